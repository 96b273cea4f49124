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
    // The fact's seq: the sequence row is bumped, then read by the fact's own INSERT. Both are deferred writes,
    // so on a shared database they travel with the COMMIT and storage_sequences' row is locked for that one
    // round trip, not from allocation to commit: two engines no longer take turns for their whole transaction.
    bumpSeq: db.prepare(() =>
      k
        .insertInto('storage_sequences')
        .values({name: 'plugin_facts', value: 1})
        .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({value: eb('storage_sequences.value', '+', 1)}))),
    ),
    insertFact: db.prepare((p: Param<{id: string; plugin: string; fact_type: string; job_id: string; command: string; fact_json: string; now: string}>) =>
      k.insertInto('plugin_facts').values({
        id: p('id'),
        seq: k.selectFrom('storage_sequences').select('value').where('name', '=', 'plugin_facts'),
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

/**
 * Write a state update: each matching rule's fact with the next seq, then the state itself. Every statement is
 * a deferred write (a legacy merge reads first), so call it last in its transaction: on PostgreSQL the locks
 * it takes (the seq row, the plugin's state row) are then held only while the COMMIT's round trip runs.
 */
export function applyStateUpdates(db: Db, w: StateWrite): void {
  if (w.rules.length === 0) {
    // Read, merged and written by one engine at a time (a shared database). A fact's state is written whole,
    // in the order of the fact's seq (storage_sequences' row stays locked until the commit).
    db.serialize(`state:${w.plugin}`)
    const merged = {...readPluginState(db, w.plugin), ...w.updates}
    writeState(db, w.plugin, normalizeObject(merged), w.now)
    return
  }
  const json = normalizeObject(w.updates)
  if (Buffer.byteLength(json) > MAX_STATE_BYTES) throw stateError(`plugin state exceeds max size (${MAX_STATE_BYTES} bytes)`)
  const s = stmts(db)
  for (const rule of w.rules) {
    s.bumpSeq.write({})
    s.insertFact.write({id: uuidv7(), plugin: w.plugin, fact_type: rule.fact_type, job_id: w.jobId, command: w.command, fact_json: json, now: w.now})
  }
  writeState(db, w.plugin, json, w.now)
}
