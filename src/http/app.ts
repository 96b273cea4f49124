import type {EventEmitter} from 'node:events'

import Fastify, {type FastifyInstance} from 'fastify'

import type {Config} from '../config/types.js'
import type {EngineEventMap} from '../engine/events.js'
import type {IngressContext} from '../engine/ingress.js'
import type {Logger} from '../engine/log.js'
import type {Pipeline} from '../plugins/pipelines.js'
import type {PluginRegistry} from '../plugins/discover.js'
import type {Db} from '../schema/db.js'
import {DuctileError, errorMessage} from '../errors.js'
import type {CommitBatch} from './batch.js'

/**
 * What the API and the webhook listener share: the engine parts they use, one error shape
 * (`{"error": {code, message}}`, never a stack), body limits, timeouts and an access log that names the
 * route pattern, never the raw URL or a body.
 */

/** What the listeners' handlers use (built by http/thread.ts). */
export interface HttpDeps {
  db: Db
  registry: PluginRegistry
  pipelines: Pipeline[]
  config: Config
  snapshotId: string
  version: string
  startedAt: number
  /** Where requests' writes go: one transaction per turn of the event loop, the worker woken after it. */
  commit: CommitBatch
  events: EventEmitter<EngineEventMap>
  logger: Logger
}

/** What engine/ingress.ts needs to enqueue a request's work now, on the listeners' connection. */
export function ingressContext(d: HttpDeps): IngressContext {
  return {db: d.db, registry: d.registry, service: d.config.service, snapshotId: d.snapshotId, now: new Date()}
}

/** An answer other than success, in the one error shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

/** Our errors as HTTP: the request's fault 4xx with its message; the database's 503; anything else 500 without detail. */
function toHttp(err: unknown): HttpError {
  if (err instanceof HttpError) return err
  if (err instanceof DuctileError) {
    const hint = err.hint ? ` (${err.hint})` : ''
    if (err.code === 'unknown_plugin' || err.code === 'not_found') return new HttpError(404, 'not_found', err.message + hint)
    if (err.code === 'usage' || err.code === 'validation') return new HttpError(400, 'validation', err.message + hint)
    if (err.code === 'conflict') return new HttpError(409, 'conflict', err.message)
    if (err.code === 'route_failed') return new HttpError(422, 'route_failed', err.message)
    if (err.code === 'db_locked' || err.code === 'db_full' || err.code === 'db_readonly')
      return new HttpError(503, 'unavailable', `the database cannot take the request now: ${err.message}`, {'retry-after': '1'})
  }
  const e = err as {statusCode?: number; code?: string; message?: string}
  // Fastify's own: body too large (413, decided from Content-Length before the body is read), bad JSON (400),
  // an unsupported Content-Type (415).
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code =
      e.statusCode === 413 ? 'payload_too_large' : e.statusCode === 415 ? 'unsupported_media_type' : e.statusCode === 404 ? 'not_found' : 'validation'
    const message =
      e.statusCode === 413
        ? 'the request body is larger than this endpoint accepts (api.max_body_size; a webhook: its max_body_size)'
        : (e.message ?? 'bad request')
    return new HttpError(e.statusCode, code, message)
  }
  return new HttpError(500, 'internal', 'internal error: the engine log has the detail')
}

export function createApp(d: Pick<HttpDeps, 'logger'>, o: {bodyLimit: number; requestTimeoutMs: number}): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit,
    // The whole request must arrive within this; a response may take longer (a synchronous pipeline).
    requestTimeout: o.requestTimeoutMs,
    connectionTimeout: 0,
    keepAliveTimeout: 5000,
    // Node looks for requests past their time every connectionsCheckingInterval (30 s unless told).
    http: {headersTimeout: o.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, o.requestTimeoutMs)} as object,
    return503OnClosing: true,
  })
  app.setErrorHandler((err, req, reply) => {
    const h = toHttp(err)
    if (h.status >= 500) d.logger.error('http request failed', {method: req.method, route: req.routeOptions.url, error: errorMessage(err)})
    void reply
      .code(h.status)
      .headers(h.headers)
      .send({error: {code: h.code, message: h.message}})
  })
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({error: {code: 'not_found', message: `no endpoint ${req.method} ${req.url.split('?')[0]?.slice(0, 200)}`}})
  })
  const debug = d.logger.level === 'debug'
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode
    if (status < 400 && !debug) return
    d.logger.log(status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug', 'http', {
      method: req.method,
      route: req.routeOptions.url ?? '(none)',
      status,
      ms: Math.round(reply.elapsedTime),
      remote: req.ip,
    })
  })
  return app
}
