import {EventEmitter} from 'node:events'
import {parentPort, workerData} from 'node:worker_threads'

import type {FastifyInstance} from 'fastify'

import type {Config, Listen} from '../config/types.js'
import {confineProcess, currentThreadId} from '../engine/affinity.js'
import type {EngineEventMap} from '../engine/events.js'
import {Logger} from '../engine/log.js'
import {compilePipelines} from '../plugins/pipelines.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {openStore} from '../schema/open.js'
import {assertSchemaCurrent} from '../schema/migrations.js'
import {DuctileError, errorMessage} from '../errors.js'
import {isLoopback} from '../config/ingress.js'
import {registerWeb} from '../web/app.js'
import {buildApi} from './api.js'
import type {HttpDeps} from './app.js'
import {CommitBatch} from './batch.js'
import {buildWebhooks} from './webhooks.js'

/**
 * The listeners' thread. Requests are parsed, checked and answered here, with a connection of its own, so a
 * flood of requests never stands between the engine's event loop and its next claim; the engine's thread
 * hears one message per committed batch (wake) and sends the events the stream and synchronous calls
 * follow. Where the engine is confined to its workers' CPUs (service.cpu_affinity), this thread runs on all
 * the CPUs the engine was given, beside it rather than on top of it.
 */

export interface ListenerData {
  dbPath: string
  config: Config
  registry: PluginRegistry
  snapshotId: string
  version: string
  startedAt: number
  logFormat: 'text' | 'json'
  logLevel: 'debug' | 'info' | 'warn' | 'error'
  /** The CPUs this thread may use (the engine's before it confined itself), or null to leave it. */
  cpus: number[] | null
}

export type ToListeners = {type: 'event'; name: keyof EngineEventMap; payload: unknown} | {type: 'close'}
export type FromListeners =
  | {type: 'listening'; api: string | null; webhooks: string | null}
  | {type: 'failed'; message: string; hint?: string}
  | {type: 'wake'}
  | {type: 'log'; line: string}
  | {type: 'closed'}

if (!parentPort) throw new Error('http/thread runs as a worker thread')
const port = parentPort
const send = (m: FromListeners) => port.postMessage(m)
const data = workerData as ListenerData

async function listen(app: FastifyInstance, l: Listen, what: string, key: string): Promise<string> {
  try {
    await app.listen({host: l.host, port: l.port})
  } catch (err) {
    const code = (err as {code?: string}).code
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : errorMessage(err)
    throw new DuctileError('runtime', `cannot listen for ${what} on ${l.text}: ${why}`, {hint: `stop what holds it or change ${key}`})
  }
  const a = app.server.address()
  return a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : l.text
}

async function main(): Promise<void> {
  const {config, registry} = data
  const logger = new Logger(data.logFormat, data.logLevel, (line) => send({type: 'log', line})).redacting(config.secrets)
  if (data.cpus) {
    const tid = currentThreadId()
    try {
      if (tid) confineProcess(tid, data.cpus, {thread: true})
    } catch (err) {
      logger.warn('could not move the listeners beside the engine; they share its CPUs', {error: errorMessage(err)})
    }
  }
  const db = openStore(data.dbPath, {mode: 'write', check: assertSchemaCurrent})
  const events = new EventEmitter<EngineEventMap>()
  const deps: HttpDeps = {
    db,
    registry,
    pipelines: compilePipelines(config, registry).pipelines,
    config,
    snapshotId: data.snapshotId,
    version: data.version,
    startedAt: data.startedAt,
    commit: new CommitBatch(db, () => send({type: 'wake'})),
    events,
    logger,
  }
  const apps: FastifyInstance[] = []
  const close = async () => {
    await Promise.all(apps.map((a) => a.close()))
    db.close()
  }
  port.on('message', (m: ToListeners) => {
    if (m.type === 'event') (events.emit as (n: string, p: unknown) => boolean)(m.name, m.payload)
    else if (m.type === 'close') void close().then(() => send({type: 'closed'}))
  })
  try {
    let api: string | null = null
    let webhooks: string | null = null
    if (config.api.enabled) {
      const {app} = buildApi(deps)
      apps.push(app)
      if (config.api.ui) {
        const web = registerWeb(
          app,
          {
            db,
            writer: () => db,
            config,
            registry,
            tokens: config.api.tokens,
            openRead: isLoopback(config.api.listen.host),
            wake: () => send({type: 'wake'}),
            log: (message, fields) => logger.info(message, fields),
          },
          '/ui',
        )
        app.addHook('onClose', async () => web.close())
      }
      api = await listen(app, config.api.listen, 'the API', 'api.listen')
    }
    if (config.webhooks.listen) {
      const app = buildWebhooks(deps, config.webhooks.endpoints)
      apps.push(app)
      webhooks = await listen(app, config.webhooks.listen, 'webhooks', 'webhooks.listen')
    }
    send({type: 'listening', api, webhooks})
  } catch (err) {
    await close()
    send({type: 'failed', message: errorMessage(err), hint: err instanceof DuctileError ? err.hint : undefined})
  }
}

main().catch((err) => send({type: 'failed', message: errorMessage(err)}))
