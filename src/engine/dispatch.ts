import type {Config} from '../config/load.js'
import {type Pipeline, compilePipelines} from '../config/pipelines.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {findQueueJob} from '../queries/queue.js'
import type {Job} from '../schema/types.js'
import {type Engine, type EngineHooks, JobFailure} from './engine.js'
import {Router, RouteError, STEP_SUCCEEDED, normalizeEvent, remap} from './router.js'
import type {RunResult} from './runner.js'
import {Scheduler} from './scheduler.js'
import {errorMessage} from '../errors.js'

/**
 * The engine's collaborators wired for a config: the scheduler on every tick, the router on every success
 * (events, synthetic step events, skipped steps) and the lifecycle hooks (notify_on_complete).
 */
export function engineHooks(config: Config, registry: PluginRegistry, pipelines: Pipeline[] = compilePipelines(config, registry).pipelines): EngineHooks {
  let scheduler: Scheduler | null = null
  let router: Router | null = null
  const routerFor = (engine: Engine) =>
    (router ??= new Router({db: engine.db, pipelines, registry, service: config.service, now: engine.clock, snapshotId: engine.snapshotId, secrets: config.secrets}))
  const schedulerFor = (engine: Engine) =>
    (scheduler ??= new Scheduler({
      db: engine.db,
      config,
      registry,
      clock: engine.clock,
      logger: engine.logger,
      enqueue: (input) => engine.enqueue(input),
      killJob: (id) => engine.killJob(id),
    }))
  const hookPipelines = pipelines.filter((p) => p.onHook !== undefined)

  return {
    tick: (engine) => {
      schedulerFor(engine).tick()
    },

    contextFor: (engine, job) => routerFor(engine).contextOf(job),

    prepareEvent: (engine, job, event, context) => {
      const at = routerFor(engine).stepOf(job)
      if (!at || Object.keys(at.step.with).length === 0) return event
      const payload = (event.payload ?? {}) as Record<string, unknown>
      return {...event, payload: {...payload, ...remap(at.step.with, {payload, context})}}
    },

    skipReason: (engine, job, context) => {
      const at = routerFor(engine).stepOf(job)
      if (!at?.step.if) return null
      let payload: unknown = {}
      try {
        payload = (JSON.parse(job.payload ?? '{}') as {payload?: unknown}).payload ?? {}
      } catch {
        // a malformed payload fails later, in the plugin
      }
      return at.step.if.eval({payload, context}) ? null : 'if condition evaluated false'
    },

    onSkipped: (engine, job) => {
      // A skipped step passes its own event on to the next step of its instance.
      const env = JSON.parse(job.payload ?? '{}') as {type: string}
      const ev = normalizeEvent(env, job.plugin, engine.clock())
      const r = routerFor(engine).route(ev, {job, plugin: job.plugin, submittedBy: 'route', intraOnly: true})
      if (r.enqueued.length) engine.wake()
    },

    onSuccess: (engine, job, _plugin, result: RunResult) => {
      const resp = result.response!
      const events = resp.events ?? []
      const r = routerFor(engine)
      const now = engine.clock()
      let n = 0
      try {
        if (events.length === 0 && job.event_context_id) {
          n += r.route(normalizeEvent({type: STEP_SUCCEEDED, payload: {result: resp.result}}, job.plugin, now), {job, plugin: job.plugin, submittedBy: 'route', intraOnly: true}).enqueued.length
        }
        for (const e of events) n += r.route(normalizeEvent(e, job.plugin, now, resp.result), {job, plugin: job.plugin, submittedBy: 'route'}).enqueued.length
      } catch (err) {
        if (err instanceof RouteError) throw new JobFailure(`event routing failed: ${err.message}`)
        throw err
      }
      if (n) engine.wake()
    },

    onTerminal: (engine, job, status, result, error) => {
      const plugin = registry.plugins.get(job.plugin)
      if (!plugin?.config.notify_on_complete || job.event_context_id || hookPipelines.length === 0) return
      const signal = status === 'succeeded' ? 'job.completed' : status === 'timed_out' ? 'job.timed_out' : status === 'failed' || status === 'dead' ? 'job.failed' : null
      if (!signal) return
      // Depth guard: a hook job's hooks may not chain past service.hook_max_depth (fail closed).
      let depth = 0
      let cur: Job | undefined = job
      while (cur && cur.submitted_by === 'hook' && depth < 1024) {
        depth++
        cur = cur.parent_job_id ? findQueueJob(engine.db, cur.parent_job_id) : undefined
      }
      if (depth + 1 > config.service.hook_max_depth) {
        engine.logger.warn('hook refused: depth limit', {job: job.id, depth, limit: config.service.hook_max_depth})
        return
      }
      const payload =
        signal === 'job.completed'
          ? {job_id: job.id, plugin: job.plugin, command: job.command, status, result: result?.response?.result ?? null}
          : {job_id: job.id, plugin: job.plugin, command: job.command, status, reason: error, ...(error ? {error} : {})}
      try {
        const roots = hookPipelines.filter((p) => p.onHook === signal)
        const r = engine.db.tx(() => routerFor(engine).route(normalizeEvent({type: signal, payload}, job.plugin, engine.clock()), {job, plugin: job.plugin, submittedBy: 'hook', roots}))
        if (r.enqueued.length) {
          engine.logger.info('hook', {signal, job: job.id, enqueued: r.enqueued.length})
          engine.wake()
        }
      } catch (err) {
        engine.logger.error('hook failed', {signal, job: job.id, error: errorMessage(err)})
      }
    },
  }
}
