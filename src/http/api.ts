import type {FastifyInstance, FastifyRequest} from 'fastify'

import type {Scope} from '../config/types.js'
import {enqueueCommand, emitEvent, targetOf} from '../engine/ingress.js'
import {countJobsByStatus, findJob, findJobTree, listJobs} from '../queries/jobs.js'
import {latestAttemptLogs, listJobLogsForJob, searchJobLogs} from '../queries/logs.js'
import {JOB_STATUSES, type JobStatus} from '../schema/definition.js'
import {formatTs, parseTs} from '../schema/time.js'
import {isMap} from '../lib/json.js'
import {Authenticator, RateLimiter} from '../lib/auth.js'
import {type HttpDeps, HttpError, createApp, ingressContext} from './app.js'
import {EventStream} from './stream.js'
import {type WireJob, wireJob, wireLog, wireLoggedJob} from './wire.js'

/**
 * The HTTP API of the original (its endpoints, request bodies and field names): trigger plugin commands and
 * pipelines, read jobs and job logs, follow the engine's events. Every request but /healthz, /plugins and /
 * carries a bearer token with the scope its endpoint needs. Reads use the CLI's query modules; enqueues go
 * through engine/ingress.ts, as `jobs enqueue` does, in group commits (batch.ts) that wake the worker: a 202
 * means the job is committed.
 */

const STATUS_ALIASES: Record<string, JobStatus> = {pending: 'queued', ok: 'succeeded', error: 'failed'}
export const MAX_JOB_LOGS = 200

function statusParam(v: unknown): JobStatus | undefined {
  if (v === undefined || v === '') return undefined
  const s = STATUS_ALIASES[String(v)] ?? String(v)
  if (!(JOB_STATUSES as readonly string[]).includes(s))
    throw new HttpError(400, 'validation', `unknown status ${JSON.stringify(v)}: use ${[...JOB_STATUSES, ...Object.keys(STATUS_ALIASES)].join(', ')}`)
  return s as JobStatus
}

function limitParam(v: unknown, def: number, max: number): number {
  if (v === undefined || v === '') return def
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new HttpError(400, 'validation', `limit must be a whole number from 1 to ${max} (got ${JSON.stringify(v)})`)
  return n
}

function timeParam(name: string, v: unknown): string | undefined {
  if (v === undefined || v === '') return undefined
  const d = parseTs(String(v))
  if (!d) throw new HttpError(400, 'validation', `${name} must be an RFC 3339 time such as 2026-11-30T14:00:00Z (got ${JSON.stringify(v)})`)
  return formatTs(d)
}

/** The payload of a trigger body `{"payload": {...}}` (absent: `{}`). */
function payloadOf(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {}
  if (!isMap(body)) throw new HttpError(400, 'validation', 'the body must be a JSON object: {"payload": {...}}')
  const p = body.payload
  if (p === undefined || p === null) return {}
  if (!isMap(p)) throw new HttpError(400, 'validation', `payload must be a JSON object, not ${Array.isArray(p) ? 'an array' : typeof p}`)
  return p
}

type Query = Record<string, string | string[] | undefined>

/** A query parameter given at most once: `?plugin=a&plugin=b` is refused, not read as one of them. */
function one(q: Query, name: string): string | undefined {
  const v = q[name]
  if (Array.isArray(v)) throw new HttpError(400, 'validation', `give ${name} once (got ${v.length} values)`)
  return v === '' ? undefined : v
}

export function buildApi(d: HttpDeps): {app: FastifyInstance; stream: EventStream} {
  const api = d.config.api
  const auth = new Authenticator(api.tokens)
  const limiter = api.rate_limit ? new RateLimiter(api.rate_limit) : null
  const stream = new EventStream(d.events, d.config.secrets)
  const app = createApp(d, {bodyLimit: api.max_body_bytes, requestTimeoutMs: api.request_timeout_ms})
  let syncWaiting = 0
  const waits = new Set<() => void>()

  /** 401/403/429, or the token's name. */
  const guard = (req: FastifyRequest, anyOf: readonly Scope[]): string => {
    const r = auth.authorize(req.headers.authorization, anyOf)
    if (!r.ok) throw new HttpError(r.status, r.status === 401 ? 'unauthorized' : 'forbidden', r.message)
    const wait = limiter?.take(r.token.name) ?? 0
    if (wait > 0)
      throw new HttpError(429, 'rate_limited', `rate limit of this token reached: try again in ${wait} ms`, {'retry-after': String(Math.ceil(wait / 1000))})
    return r.token.name
  }
  const ctx = () => ingressContext(d)

  app.get('/', async () => ({
    name: 'Ductile',
    version: d.version,
    uptime_seconds: Math.floor((Date.now() - d.startedAt) / 1000),
    discovery: {health: '/healthz', plugins: '/plugins', events: '/events'},
  }))

  app.get('/healthz', async () => {
    const counts = countJobsByStatus(d.db)
    const of = (s: JobStatus) => counts.find((c) => c.status === s)?.count ?? 0
    return {
      status: 'ok',
      uptime_seconds: Math.floor((Date.now() - d.startedAt) / 1000),
      queue_depth: of('queued'),
      running: of('running'),
      plugins_loaded: d.registry.plugins.size,
      config_path: d.config.file,
      version: d.version,
      event_clients: stream.size,
    }
  })

  app.get('/plugins', async () => ({
    plugins: [...d.registry.plugins.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => ({name: p.name, version: p.manifest.version, description: p.manifest.description ?? '', commands: p.manifest.commands.map((c) => c.name)})),
  }))

  app.get<{Params: {name: string}}>('/plugin/:name', async (req) => {
    guard(req, ['plugin:ro'])
    const p = d.registry.plugins.get(req.params.name)
    if (!p) throw new HttpError(404, 'not_found', `unknown plugin ${req.params.name}`)
    return {
      name: p.name,
      version: p.manifest.version,
      description: p.manifest.description ?? '',
      protocol: p.manifest.protocol,
      commands: p.manifest.commands.map((c) => ({name: c.name, type: c.type, description: c.description ?? ''})),
    }
  })

  app.post<{Params: {plugin: string; command: string}}>('/plugin/:plugin/:command', async (req, reply) => {
    // Who asks first (an unauthenticated caller learns nothing of the plugins), then what: a manifest read
    // command needs plugin:ro, anything else plugin:rw.
    const {plugin, command} = req.params
    const type = d.registry.plugins.get(plugin)?.manifest.commands.find((c) => c.name === command)?.type ?? 'read'
    guard(req, [type === 'write' ? 'plugin:rw' : 'plugin:ro'])
    targetOf(d.registry, plugin, command)
    const payload = payloadOf(req.body)
    const r = await d.commit.run(() => enqueueCommand(ctx(), {plugin, command, payload, origin: 'api'}))
    if (r.status !== 'enqueued') throw new HttpError(409, 'conflict', r.reason)
    return reply.code(202).send({job_id: r.job.id, status: 'queued', plugin, command})
  })

  app.post<{Params: {name: string}; Querystring: Query}>('/pipeline/:name', async (req, reply) => {
    guard(req, ['plugin:rw'])
    const p = d.pipelines.find((x) => x.name === req.params.name)
    if (!p) throw new HttpError(404, 'not_found', `unknown pipeline ${req.params.name}`)
    const payload = payloadOf(req.body)
    const asyncParam = one(req.query, 'async')
    const sync = asyncParam === 'false' || (p.executionMode === 'synchronous' && asyncParam !== 'true')
    if (sync && syncWaiting >= api.max_concurrent_sync)
      throw new HttpError(
        429,
        'too_many_sync',
        `${api.max_concurrent_sync} synchronous pipeline calls are waiting (api.max_concurrent_sync): retry later or call with ?async=true`,
      )
    // Routing may fail after it wrote (route_failed): its writes are undone on their own, in a savepoint.
    const r = await d.commit.run(
      () => emitEvent({...ctx(), pipelines: d.pipelines, secrets: d.config.secrets}, {type: p.on ?? 'api.trigger', payload, origin: 'api', pipelines: [p]}),
      {savepoint: true},
    )
    const root = r.enqueued[0]
    if (!root) {
      const why = r.skipped[0]?.reason ?? (p.if ? `its if: ${p.if.source} is false for this payload` : 'no step to start')
      throw new HttpError(422, 'not_started', `pipeline ${p.name} did not start: ${why}`)
    }
    const accepted = {job_id: root.jobId, status: 'queued', plugin: 'pipeline', command: p.name, pipeline: p.name, step: root.step}
    if (!sync) return reply.code(202).send(accepted)
    const timeoutMs = Math.min(p.timeoutMs ?? api.max_sync_timeout_ms, api.max_sync_timeout_ms)
    syncWaiting++
    const started = Date.now()
    try {
      const tree = await waitForTree(root.jobId, timeoutMs)
      if (!tree) {
        const job = findJob(d.db, root.jobId)
        return reply
          .code(202)
          .send({...accepted, status: job?.status ?? 'running', timeout_exceeded: true, message: `pipeline still running after ${timeoutMs} ms`})
      }
      const failed = tree.find((j) => j.status !== 'succeeded' && j.status !== 'skipped')
      const last = [...tree].filter((j) => j.completed_at).sort((a, b) => (a.completed_at ?? '').localeCompare(b.completed_at ?? ''))
      return reply.code(200).send({
        job_id: root.jobId,
        status: failed?.status ?? 'succeeded',
        duration_ms: Date.now() - started,
        result: last.at(-1)?.result ?? null,
        tree,
      })
    } finally {
      syncWaiting--
    }
  })

  /** The tree of a job once every job in it is terminal, or null when the time runs out (or the server closes). */
  function waitForTree(rootId: string, timeoutMs: number): Promise<WireJob[] | null> {
    return new Promise((resolve) => {
      const check = () => {
        const jobs = findJobTree(d.db, rootId)
        if (jobs.length === 0 || jobs.some((j) => j.status === 'queued' || j.status === 'running')) return false
        finish(wireTree(jobs))
        return true
      }
      const onEvent = () => {
        try {
          check()
        } catch {
          // read again on the next event
        }
      }
      const timer = setTimeout(() => finish(null), timeoutMs)
      // Ends the engine does not announce (an operator's cancel in another process) are found by this look.
      const poll = setInterval(onEvent, 1000)
      const finish = (v: WireJob[] | null) => {
        clearTimeout(timer)
        clearInterval(poll)
        d.events.off('job:end', onEvent)
        d.events.off('job:retry', onEvent)
        waits.delete(abort)
        resolve(v)
      }
      const abort = () => finish(null)
      waits.add(abort)
      d.events.on('job:end', onEvent)
      d.events.on('job:retry', onEvent)
      onEvent()
    })
  }

  function wireTree(jobs: ReturnType<typeof findJobTree>): WireJob[] {
    const logs = latestAttemptLogs(
      d.db,
      jobs.map((j) => j.id),
    )
    return jobs.map((j) => wireJob(j, logs.get(j.id)))
  }

  app.get<{Params: {id: string}}>('/job/:id', async (req) => {
    guard(req, ['jobs:ro'])
    const job = findJob(d.db, req.params.id)
    const logs = listJobLogsForJob(d.db, req.params.id)
    if (job) return wireJob(job, logs.at(-1))
    const last = logs.at(-1)
    if (last) return wireLoggedJob(last)
    throw new HttpError(404, 'not_found', `no job ${req.params.id} (pruned jobs are kept in job_log for service.job_log_retention)`)
  })

  app.get<{Params: {id: string}}>('/job/:id/tree', async (req) => {
    guard(req, ['jobs:ro'])
    const jobs = findJobTree(d.db, req.params.id)
    if (jobs.length === 0) throw new HttpError(404, 'not_found', `no job ${req.params.id} in the queue`)
    return wireTree(jobs)
  })

  app.get<{Querystring: Query}>('/jobs', async (req) => {
    guard(req, ['jobs:ro'])
    const q = req.query
    const jobs = listJobs(d.db, {
      status: statusParam(one(q, 'status')),
      plugin: one(q, 'plugin'),
      command: one(q, 'command'),
      limit: limitParam(one(q, 'limit'), 50, 1000),
    })
    return {jobs: jobs.map((j) => wireJob(j, undefined, false)), total: jobs.length}
  })

  app.get<{Querystring: Query}>('/job-logs', async (req) => {
    guard(req, ['jobs:ro'])
    const q = req.query
    const r = searchJobLogs(d.db, {
      jobId: one(q, 'job_id'),
      plugin: one(q, 'plugin'),
      command: one(q, 'command'),
      status: statusParam(one(q, 'status')),
      submittedBy: one(q, 'submitted_by'),
      from: timeParam('from', one(q, 'from')),
      to: timeParam('to', one(q, 'to')),
      query: one(q, 'query'),
      limit: limitParam(one(q, 'limit'), 50, MAX_JOB_LOGS),
    })
    const withResult = one(q, 'include_result') === 'true'
    return {logs: r.rows.map((l) => wireLog(l, withResult)), total: r.rows.length, truncated: r.truncated}
  })

  app.get('/events', async (req, reply) => {
    guard(req, ['events:ro'])
    reply.hijack()
    stream.add(reply.raw, api.heartbeat_ms)
  })

  app.addHook('onClose', async () => {
    for (const abort of [...waits]) abort()
    stream.close()
  })
  return {app, stream}
}
