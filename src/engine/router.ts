import {redactDeep} from '../config/secrets.js'
import type {ServiceConfig} from '../config/types.js'
import {getPath} from '../config/expr.js'
import type {Pipeline, PipelineStep} from '../plugins/pipelines.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {findContext, insertContext} from '../queries/context.js'
import {enqueueJob} from '../queries/queue.js'
import type {Db} from '../schema/db.js'
import {uuidv7} from '../schema/ids.js'
import {formatTs} from '../schema/time.js'
import type {EventContextRow, Job} from '../schema/types.js'
import {isMap} from '../lib/json.js'
import {DuctileError} from '../errors.js'

/**
 * Events, pipelines and the baggage ledger. An event starts every pipeline whose `on`
 * matches; a pipeline step's events (or, when it emits none, a synthetic `ductile.step.succeeded`) advance
 * its instance to the next step. Each dispatch writes an event_context row (deep accretion: inherited values
 * are immutable except the route depth) and a job; everything runs inside the caller's transaction, so a
 * routing error rolls back with the job that emitted the event.
 */

export const MAX_CONTEXT_BYTES = 1 << 20
export const STEP_SUCCEEDED = 'ductile.step.succeeded'

export interface Envelope {
  type: string
  payload: unknown
  dedupe_key?: string
  source: string
  timestamp: string
  event_id: string
}

/** An event that cannot be routed (a depth limit, a baggage conflict): the job that emitted it fails. */
function routeError(message: string): DuctileError {
  return new DuctileError('route_failed', message)
}

export interface RouterDeps {
  db: Db
  pipelines: Pipeline[]
  registry: PluginRegistry
  service: ServiceConfig
  now: () => Date
  snapshotId: string | null
  /**
   * Secret values of the config. What plugins emit (events, and the outcomes hooks report) is data: a secret
   * in it is masked before it reaches a job's payload, its context or the next plugin.
   */
  secrets?: string[]
}

/** Where work entering from outside the engine came from (engine/ingress.ts). */
export type Origin = 'cli' | 'api' | 'webhook' | 'web'

export interface RouteSource {
  /** The emitting job (null for `ductile events emit`). */
  job: Job | null
  plugin: string
  submittedBy: 'route' | 'hook' | Origin
  /** Only advance the source's own pipeline instance (synthetic and re-routed events). */
  intraOnly?: boolean
  /** Pipelines to consider for root triggers (default: those with `on`). */
  roots?: Pipeline[]
  /** The roots were named by the caller (POST /pipeline/{name}): start them whatever their `on` and from_plugin. */
  explicit?: boolean
}

export interface RouteResult {
  enqueued: {jobId: string; pipeline: string; step: string}[]
  skipped: {pipeline: string; step: string; reason: string}[]
}

interface Dispatch {
  pipeline: Pipeline
  step: PipelineStep
  instance: string
  parent: EventContextRow | null
  depth: number
  root: boolean
}

export function control(acc: Record<string, unknown>): {pipeline_instance_id?: string; route_depth?: number; route_max_depth?: number} {
  return (isMap(acc.ductile) ? acc.ductile : {}) as {pipeline_instance_id?: string; route_depth?: number}
}

/** Fill event_id, timestamp and source; copy the response's result into payload.result when absent. */
export function normalizeEvent(
  ev: {type: string; payload?: unknown; dedupe_key?: string; event_id?: string; timestamp?: string; source?: string},
  plugin: string,
  now: Date,
  result?: unknown,
): Envelope {
  let payload = ev.payload ?? {}
  if (isMap(payload) && result !== undefined && result !== null && result !== '' && payload.result === undefined) payload = {...payload, result}
  return {
    type: ev.type,
    payload,
    ...(ev.dedupe_key ? {dedupe_key: ev.dedupe_key} : {}),
    source: ev.source ?? plugin,
    timestamp: ev.timestamp ?? formatTs(now),
    event_id: ev.event_id ?? uuidv7(),
  }
}

/**
 * Deep accretion: child = parent, then each update key: absent → added; JSON-equal → kept;
 * `ductile.route_depth` → overwritten; both objects → recurse; otherwise an error naming the path.
 */
export function accrete(parent: Record<string, unknown>, updates: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {...parent}
  for (const [k, v] of Object.entries(updates)) {
    const path = prefix ? `${prefix}.${k}` : k
    if (!(k in out)) out[k] = v
    else if (JSON.stringify(out[k]) === JSON.stringify(v)) continue
    else if (path === 'ductile.route_depth') out[k] = v
    else if (isMap(out[k]) && isMap(v)) out[k] = accrete(out[k] as Record<string, unknown>, v, path)
    else throw routeError(`baggage path "${path}" is immutable: inherited value differs from child value`)
  }
  return out
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.')
  let cur = obj
  for (const p of parts.slice(0, -1)) {
    if (!isMap(cur[p])) cur[p] = {}
    cur = cur[p] as Record<string, unknown>
  }
  cur[parts.at(-1) ?? ''] = value
}

function claims(step: PipelineStep, pipeline: Pipeline, scope: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const c of step.baggage) {
    const v = getPath(scope, c.from.split('.'))
    if (v === undefined) throw routeError(`baggage source ${c.from} is missing for step ${step.id} of pipeline ${pipeline.name}`)
    if (c.namespace !== undefined) {
      if (!isMap(v)) throw routeError(`baggage source ${c.from} of step ${step.id} (pipeline ${pipeline.name}) must be an object to copy under ${c.namespace}`)
      setPath(out, c.namespace, v)
    } else setPath(out, c.path, v)
  }
  return out
}

export function accumulated(row: EventContextRow | null | undefined): Record<string, unknown> {
  if (!row) return {}
  try {
    const v = JSON.parse(row.accumulated_json)
    return isMap(v) ? v : {}
  } catch {
    return {}
  }
}

export class Router {
  constructor(private readonly d: RouterDeps) {}

  private ts(): string {
    return formatTs(this.d.now())
  }

  private dispatches(ev: Envelope, src: RouteSource, srcCtx: EventContextRow | null): Dispatch[] {
    const out: Dispatch[] = []
    const acc = accumulated(srcCtx)
    const ctl = control(acc)
    const srcDepth = typeof ctl.route_depth === 'number' ? ctl.route_depth : -1
    // (a) the next step of the source's own pipeline instance
    if (srcCtx?.pipeline_name && ctl.pipeline_instance_id) {
      const p = this.d.pipelines.find((x) => x.name === srcCtx.pipeline_name)
      const at = p ? p.steps.findIndex((s) => s.id === srcCtx.step_id) : -1
      const next = p && at >= 0 ? p.steps[at + 1] : undefined
      if (p && next) out.push({pipeline: p, step: next, instance: ctl.pipeline_instance_id, parent: srcCtx, depth: srcDepth + 1, root: false})
    }
    // (b) root triggers: a fresh instance per pipeline and event
    if (!src.intraOnly && ev.type !== STEP_SUCCEEDED) {
      const scope = {payload: ev.payload, context: acc}
      for (const p of src.roots ?? this.d.pipelines.filter((x) => x.on !== undefined)) {
        if (!src.explicit && p.on !== undefined && p.on !== ev.type) continue
        if (!src.explicit && p.fromPlugin && p.fromPlugin !== src.plugin) continue
        if (p.if && !p.if.eval(scope)) continue
        const first = p.steps[0]
        if (!first) continue
        // A pipeline started by a pipeline job continues its depth, so cycles through `on` triggers end too.
        out.push({pipeline: p, step: first, instance: uuidv7(), parent: null, depth: Math.max(srcDepth, 0), root: true})
      }
    }
    return out
  }

  /** Route one (normalized) event from its source. Throws a DuctileError `route_failed` for errors that must fail the emitter. */
  route(event: Envelope, src: RouteSource): RouteResult {
    const ev = this.d.secrets?.length ? {...event, payload: redactDeep(event.payload, this.d.secrets)} : event
    const res: RouteResult = {enqueued: [], skipped: []}
    const db = this.d.db
    const srcCtx = src.job?.event_context_id ? (findContext(db, src.job.event_context_id) ?? null) : null
    const seen = new Set<string>()
    for (const d of this.dispatches(ev, src, srcCtx)) {
      const target = this.d.registry.plugins.get(d.step.uses)
      const key = `${d.pipeline.name}|${d.step.id}|${d.instance}|${d.step.uses}|${d.step.command}|${ev.event_id}`
      if (seen.has(key) || !target) continue
      seen.add(key)
      const max = d.pipeline.maxDepth
      const stepDepth = d.root ? d.depth + 1 : d.depth
      if (max > 0 && stepDepth > max) {
        throw routeError(
          `route depth limit ${max} reached: event ${ev.type} from ${src.plugin} would start step ${d.step.id} of pipeline ${d.pipeline.name} at depth ${stepDepth} (is there a cycle?)`,
        )
      }
      const payload = isMap(ev.payload) ? {...ev.payload} : ev.payload
      if (isMap(payload)) {
        payload.ductile_upstream_plugin ??= src.plugin
        if (srcCtx?.pipeline_name) payload.ductile_upstream_pipeline ??= srcCtx.pipeline_name
        if (srcCtx?.step_id) payload.ductile_upstream_step_id ??= srcCtx.step_id
      }
      const envelope: Envelope = {...ev, payload}
      const now = this.ts()
      // Redelivery or dedupe is a no-op, not an error: its context rows are undone with the savepoint.
      const r = db.undoUnless(
        () => {
          let parent = d.parent
          if (d.root) {
            const rootAcc = {ductile: {pipeline_instance_id: d.instance, route_depth: d.depth, ...(max > 0 ? {route_max_depth: max} : {})}}
            parent = insertContext(db, {
              parent_id: null,
              pipeline_name: d.pipeline.name,
              step_id: '',
              accumulated_json: JSON.stringify(rootAcc),
              created_at: now,
            })
          }
          const parentAcc = accumulated(parent)
          const updates = claims(d.step, d.pipeline, {payload, context: parentAcc})
          const merged = accrete(accrete(parentAcc, updates), {
            ductile: {pipeline_instance_id: d.instance, route_depth: stepDepth, ...(max > 0 ? {route_max_depth: max} : {})},
          })
          const json = JSON.stringify(merged)
          if (Buffer.byteLength(json) > MAX_CONTEXT_BYTES)
            throw routeError(`accumulated context exceeds max size (${MAX_CONTEXT_BYTES} bytes) at step ${d.step.id} of pipeline ${d.pipeline.name}`)
          const ctx = insertContext(db, {
            parent_id: parent?.id ?? null,
            pipeline_name: d.pipeline.name,
            step_id: d.step.id,
            accumulated_json: json,
            created_at: now,
          })
          return enqueueJob(db, {
            plugin: d.step.uses,
            command: d.step.command,
            payload: envelope,
            submittedBy: src.submittedBy,
            maxAttempts: target.config.retry.max_attempts,
            dedupeKey: ev.dedupe_key,
            dedupeTtlMs: this.d.service.dedupe_ttl_ms,
            dedupeOutstanding: Boolean(ev.dedupe_key),
            parentJobId: src.job?.id ?? null,
            sourceEventId: ev.event_id,
            eventContextId: ctx.id,
            configSnapshotId: this.d.snapshotId,
            now,
          })
        },
        (x) => x.status === 'enqueued',
      )
      if (r.status === 'enqueued') res.enqueued.push({jobId: r.job.id, pipeline: d.pipeline.name, step: d.step.id})
      else res.skipped.push({pipeline: d.pipeline.name, step: d.step.id, reason: r.reason})
    }
    return res
  }

  /** The request context of a pipeline job: its accumulated baggage plus the ductile_* keys. */
  contextOf(job: Job): Record<string, unknown> {
    if (!job.event_context_id) return {}
    const row = findContext(this.d.db, job.event_context_id)
    if (!row) return {}
    const acc = accumulated(row)
    const ctl = control(acc)
    return {
      ...acc,
      ductile_pipeline: row.pipeline_name,
      ductile_step_id: row.step_id,
      ductile_pipeline_instance_id: ctl.pipeline_instance_id,
      ductile_route_depth: ctl.route_depth,
      ...(ctl.route_max_depth !== undefined ? {ductile_route_max_depth: ctl.route_max_depth} : {}),
    }
  }

  /** The step a pipeline job runs. */
  stepOf(job: Job): {pipeline: Pipeline; step: PipelineStep; context: EventContextRow} | null {
    if (!job.event_context_id) return null
    const row = findContext(this.d.db, job.event_context_id)
    if (!row?.pipeline_name) return null
    const pipeline = this.d.pipelines.find((p) => p.name === row.pipeline_name)
    const step = pipeline?.steps.find((s) => s.id === row.step_id)
    return pipeline && step ? {pipeline, step, context: row} : null
  }
}

/** `with:` remaps: "{payload.x}" and "{context.y}" placeholders; a lone placeholder keeps the value's type. */
export function remap(withMap: Record<string, unknown>, scope: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(withMap)) {
    if (typeof v !== 'string') {
      out[k] = v
      continue
    }
    const whole = /^\{((?:payload|context)(?:\.[^.{}]+)+)\}$/.exec(v)?.[1]
    if (whole) {
      out[k] = getPath(scope, whole.split('.'))
      continue
    }
    out[k] = v.replace(/\{((?:payload|context)(?:\.[^.{}]+)+)\}/g, (_m, p: string) => {
      const x = getPath(scope, p.split('.'))
      return x === undefined ? '' : typeof x === 'string' ? x : JSON.stringify(x)
    })
  }
  return out
}
