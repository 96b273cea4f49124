import {getPath} from '../config/expr.js'
import type {ServiceConfig} from '../config/types.js'
import type {Pipeline} from '../plugins/pipelines.js'
import type {PluginInstance, PluginRegistry} from '../plugins/discover.js'
import {findQueueJob} from '../queries/queue.js'
import type {Db} from '../schema/db.js'
import type {Job} from '../schema/types.js'
import {isMap} from '../lib/json.js'
import {errorMessage} from '../errors.js'
import type {JobEnd} from './events.js'
import type {Logger} from './log.js'
import {Router, STEP_SUCCEEDED, normalizeEvent, remap} from './router.js'
import type {PluginResponse} from './runner.js'

export interface DispatchDeps {
  db: Db
  pipelines: Pipeline[]
  registry: PluginRegistry
  service: ServiceConfig
  clock: () => Date
  snapshotId: string
  secrets: string[]
  logger: Logger
}

/**
 * Where the worker loop meets pipelines: the context and event a pipeline step's plugin receives, whether the
 * step runs at all (its `if:`), and what its end starts next (the events it emitted, a synthetic
 * `ductile.step.succeeded`, or a skipped step's own event). Lifecycle hooks (notify_on_complete) start from
 * the engine's `job:end` event.
 */
export class PipelineDispatch {
  readonly router: Router
  private readonly hookPipelines: Pipeline[]

  constructor(private readonly d: DispatchDeps) {
    this.router = new Router({
      db: d.db,
      pipelines: d.pipelines,
      registry: d.registry,
      service: d.service,
      now: d.clock,
      snapshotId: d.snapshotId,
      secrets: d.secrets,
    })
    this.hookPipelines = d.pipelines.filter((p) => p.onHook !== undefined)
  }

  /** The pipeline context of a job's request (empty outside pipelines). */
  contextOf(job: Job): Record<string, unknown> {
    return this.router.contextOf(job)
  }

  /** The event a step's plugin receives: its envelope with the step's `with:` remaps applied. */
  prepareEvent(job: Job, event: Record<string, unknown>, context: Record<string, unknown>): Record<string, unknown> {
    const at = this.router.stepOf(job)
    if (!at || Object.keys(at.step.with).length === 0) return event
    const payload = isMap(event.payload) ? event.payload : {}
    return {...event, payload: {...payload, ...remap(at.step.with, {payload, context})}}
  }

  /** Why a step does not run (its `if:` is false), or null. */
  skipReason(job: Job, payload: unknown, context: Record<string, unknown>): string | null {
    const at = this.router.stepOf(job)
    if (!at?.step.if) return null
    const eventPayload = isMap(payload) ? (payload.payload ?? {}) : {}
    const scope = {payload: eventPayload, context}
    if (at.step.if.eval(scope)) return null
    // The expression and the values it saw, so `explain job` (and the job's row) can say why.
    const seen = at.step.if.paths.map((p) => {
      const v = getPath(scope, p.split('.'))
      const text = v === undefined ? 'missing' : JSON.stringify(v)
      return `${p}: ${text.length > 80 ? `${text.slice(0, 79)}…` : text}`
    })
    return `if ${at.step.if.source} was false${seen.length ? ` (${seen.join(', ')})` : ''}`
  }

  /** Inside the transaction that records a skipped step: it passes its own event on to the next step. Returns the jobs enqueued. */
  afterSkip(job: Job): number {
    const env = JSON.parse(job.payload ?? '{}') as {type: string}
    const ev = normalizeEvent(env, job.plugin, this.d.clock())
    return this.router.route(ev, {job, plugin: job.plugin, submittedBy: 'route', intraOnly: true}).enqueued.length
  }

  /**
   * Inside the success transaction: route the response's events (or the step's synthetic success). A routing
   * error (a DuctileError `route_failed`) aborts the transaction and fails the job. Returns the jobs enqueued.
   */
  afterSuccess(job: Job, response: PluginResponse): number {
    const events = response.events ?? []
    const now = this.d.clock()
    let n = 0
    if (events.length === 0 && job.event_context_id) {
      n += this.router.route(normalizeEvent({type: STEP_SUCCEEDED, payload: {result: response.result}}, job.plugin, now), {
        job,
        plugin: job.plugin,
        submittedBy: 'route',
        intraOnly: true,
      }).enqueued.length
    }
    for (const e of events)
      n += this.router.route(normalizeEvent(e, job.plugin, now, response.result), {job, plugin: job.plugin, submittedBy: 'route'}).enqueued.length
    return n
  }

  /** A job of a notify_on_complete plugin reached a terminal status: start the pipelines `on_hook` names. Returns the jobs enqueued. */
  hook(end: JobEnd, plugin: PluginInstance | undefined): number {
    const {job, status, error} = end
    if (!end.ran || !plugin?.config.notify_on_complete || job.event_context_id || this.hookPipelines.length === 0) return 0
    const signal =
      status === 'succeeded' ? 'job.completed' : status === 'timed_out' ? 'job.timed_out' : status === 'failed' || status === 'dead' ? 'job.failed' : null
    if (!signal) return 0
    // Depth guard: a hook job's hooks may not chain past service.hook_max_depth (fail closed).
    let depth = 0
    let cur: Job | undefined = job
    while (cur && cur.submitted_by === 'hook' && depth < 1024) {
      depth++
      cur = cur.parent_job_id ? findQueueJob(this.d.db, cur.parent_job_id) : undefined
    }
    const limit = this.d.service.hook_max_depth
    if (depth + 1 > limit) {
      this.d.logger.warn('hook refused: depth limit', {job: job.id, depth, limit})
      return 0
    }
    const payload =
      signal === 'job.completed'
        ? {job_id: job.id, plugin: job.plugin, command: job.command, status, result: end.response?.result ?? null}
        : {job_id: job.id, plugin: job.plugin, command: job.command, status, reason: error, ...(error ? {error} : {})}
    try {
      const roots = this.hookPipelines.filter((p) => p.onHook === signal)
      const r = this.d.db.tx(() =>
        this.router.route(normalizeEvent({type: signal, payload}, job.plugin, this.d.clock()), {job, plugin: job.plugin, submittedBy: 'hook', roots}),
      )
      if (r.enqueued.length) this.d.logger.info('hook', {signal, job: job.id, enqueued: r.enqueued.length})
      return r.enqueued.length
    } catch (err) {
      this.d.logger.error('hook failed', {signal, job: job.id, error: errorMessage(err)})
      return 0
    }
  }
}
