import {type Db, type Param, perHandle} from '../schema/db.js'
import {uuidv7} from '../schema/ids.js'
import {DuctileError, errorMessage} from '../errors.js'

/**
 * Plugin memory: with a matching fact_outputs rule the state_updates
 * snapshot is appended to plugin_facts with the next seq and mirrored into plugin_state; without one it is
 * shallow-merged into plugin_state. Call inside the completion transaction so a failure rolls back the
 * sequence bump with everything else.
 */

export const MAX_STATE_BYTES = 1 << 20

/** Plugin state that cannot be read or written: the attempt that met it fails without retry. */
function stateError(message: string): DuctileError {
  return new DuctileError('state_invalid', message)
}

/** Compact JSON with top-level keys sorted (the original re-marshals from a map). */
export function normalizeObject(obj: Record<string, unknown>): string {
  const sorted: Record<string, unknown> = {}
  for (const k of Object.keys(obj).sort()) sorted[k] = obj[k]
  return JSON.stringify(sorted)
}

/** The engine writes these once or more per job: compiled once per handle. */
const stmts = perHandle((db: Db) => {
  const k = db.k
  return {
    readState: db.prepare((p: Param<{plugin: string}>) => k.selectFrom('plugin_state').select('state').where('plugin_name', '=', p('plugin'))),
    writeState: db.prepare((p: Param<{plugin: string; state: string; now: string}>) =>
      k
        .insertInto('plugin_state')
        .values({plugin_name: p('plugin'), state: p('state'), updated_at: p('now')})
        .onConflict((oc) => oc.column('plugin_name').doUpdateSet((eb) => ({state: eb.ref('excluded.state'), updated_at: eb.ref('excluded.updated_at')}))),
    ),
    nextSeq: db.prepare(() =>
      k
        .insertInto('storage_sequences')
        .values({name: 'plugin_facts', value: 1})
        .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({value: eb('storage_sequences.value', '+', 1)})))
        .returning('value'),
    ),
    insertFact: db.prepare(
      (p: Param<{id: string; seq: number; plugin: string; fact_type: string; job_id: string; command: string; fact_json: string; now: string}>) =>
        k.insertInto('plugin_facts').values({
          id: p('id'),
          seq: p('seq'),
          plugin_name: p('plugin'),
          fact_type: p('fact_type'),
          job_id: p('job_id'),
          command: p('command'),
          fact_json: p('fact_json'),
          created_at: p('now'),
        }),
    ),
  }
})

export function readPluginState(db: Db, plugin: string): Record<string, unknown> {
  const row = stmts(db).readState.get({plugin})
  if (!row) return {}
  try {
    const v = JSON.parse(row.state) as unknown
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
    throw new Error('not an object')
  } catch (e) {
    throw stateError(`stored plugin_state for ${plugin} is not a JSON object: ${errorMessage(e)}`)
  }
}

function writeState(db: Db, plugin: string, json: string, now: string): void {
  if (Buffer.byteLength(json) > MAX_STATE_BYTES) throw stateError(`plugin state exceeds max size (${MAX_STATE_BYTES} bytes)`)
  stmts(db).writeState.write({plugin, state: json, now})
}

export interface FactRule {
  fact_type: string
}

export interface StateWrite {
  plugin: string
  command: string
  jobId: string
  updates: Record<string, unknown>
  /** fact_outputs rules of the manifest that match this command. */
  rules: FactRule[]
  now: string
}

/** Returns the seqs of the facts written (empty for a legacy merge). */
export function applyStateUpdates(db: Db, w: StateWrite): number[] {
  if (w.rules.length === 0) {
    // Read, merged and written by one engine at a time (a shared database). A fact's state is written whole,
    // in the order of the fact's seq (storage_sequences' row stays locked until the commit).
    db.serialize(`state:${w.plugin}`)
    const merged = {...readPluginState(db, w.plugin), ...w.updates}
    writeState(db, w.plugin, normalizeObject(merged), w.now)
    return []
  }
  const json = normalizeObject(w.updates)
  if (Buffer.byteLength(json) > MAX_STATE_BYTES) throw stateError(`plugin state exceeds max size (${MAX_STATE_BYTES} bytes)`)
  const seqs: number[] = []
  for (const rule of w.rules) {
    const seq = nextFactSeq(db)
    stmts(db).insertFact.write({
      id: uuidv7(),
      seq,
      plugin: w.plugin,
      fact_type: rule.fact_type,
      job_id: w.jobId,
      command: w.command,
      fact_json: json,
      now: w.now,
    })
    seqs.push(seq)
  }
  writeState(db, w.plugin, json, w.now)
  return seqs
}

/** Allocate the next plugin_facts seq from storage_sequences (first value 1). */
export function nextFactSeq(db: Db): number {
  const row = stmts(db).nextSeq.get({})
  if (!row) throw new Error('storage_sequences returned no plugin_facts value')
  return Number(row.value)
}
