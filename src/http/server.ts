import type {EventEmitter} from 'node:events'
import {pathToFileURL} from 'node:url'
import {Worker} from 'node:worker_threads'

import type {EngineEventMap} from '../engine/events.js'
import type {Logger} from '../engine/log.js'
import {ownModule} from '../assets.js'
import {DuctileError} from '../errors.js'
import type {FromListeners, ListenerData, ToListeners} from './thread.js'

/**
 * The engine's listeners: the API when api.enabled, the webhooks when webhooks.listen is set, run on a thread
 * of their own (http/thread.ts). Started after the engine (the database is open, crash recovery is done) and
 * closed before it stops, so no request is accepted that the engine will not see through.
 */

export interface Listeners {
  /** host:port actually bound (port 0 in the config picks a free one). */
  api: string | null
  webhooks: string | null
  /** Stop accepting, end event streams and synchronous waits, finish requests in flight. */
  close(): Promise<void>
}

/** What the engine gives its listeners (Engine.httpDeps()). */
export type ListenerDeps = Omit<ListenerData, 'logFormat' | 'logLevel' | 'cpus'> & {
  /** Wake the worker loop: jobs were committed. */
  wake: () => void
  events: EventEmitter<EngineEventMap>
  logger: Logger
}

const FORWARDED = ['job:start', 'job:end', 'job:retry', 'breaker:change'] as const

export function startListeners(
  d: ListenerDeps,
  o: {
    /** The CPUs for the thread (see engine/affinity.ts cpusBeside); null: where the engine runs. */
    cpus?: number[] | null
    /** Told when the thread dies after it listened (the engine then stops: see engine start). */
    onFailure?: (message: string) => void
  } = {},
): Promise<Listeners> {
  const {wake, events, logger, ...rest} = d
  const workerData: ListenerData = {...rest, logFormat: logger.format, logLevel: logger.level, cpus: o.cpus ?? null}
  const file = ownModule('http/thread')
  // From the sources (tests, development) the thread registers the TypeScript loader first (Node 20 does
  // not pass a loader of this process on to its threads); the build's thread needs nothing.
  const worker = file.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(pathToFileURL(file).href)}) })`, {eval: true, workerData})
    : new Worker(file, {workerData, execArgv: []})
  // The engine's events, as small plain data: a job's id, plugin, command and attempt (not its payload of up
  // to 1 MiB, nor a plugin's response: nothing there reads them).
  const forwards = FORWARDED.map((name) => {
    const fn = (payload: {job?: {id: string; plugin: string; command: string; attempt: number}}) => {
      const j = payload.job
      const p = j ? {...payload, response: undefined, job: {id: j.id, plugin: j.plugin, command: j.command, attempt: j.attempt}} : payload
      worker.postMessage({type: 'event', name, payload: p} satisfies ToListeners)
    }
    events.on(name, fn)
    return () => events.off(name, fn)
  })
  let closing: Promise<void> | null = null
  let onClosed: (() => void) | null = null
  let listening = false
  let failed = false
  return new Promise((resolve, reject) => {
    const fail = (message: string, hint?: string) => {
      if (failed) return
      failed = true
      for (const off of forwards) off()
      void worker.terminate()
      if (listening) o.onFailure?.(message)
      else reject(new DuctileError('runtime', message, {hint}))
    }
    worker.on('message', (m: FromListeners) => {
      if (m.type === 'wake') wake()
      else if (m.type === 'log') logger.writeLine(m.line)
      else if (m.type === 'failed') fail(m.message, m.hint)
      else if (m.type === 'closed') onClosed?.()
      else if (m.type === 'listening') {
        listening = true
        if (m.api) logger.info('api listening', {address: m.api, tokens: d.config.api.tokens.length})
        if (m.webhooks) logger.info('webhooks listening', {address: m.webhooks, endpoints: d.config.webhooks.endpoints.map((e) => e.path).join(',')})
        resolve({
          api: m.api,
          webhooks: m.webhooks,
          close: () => {
            // A thread that already died has nothing left to close.
            if (failed) return Promise.resolve()
            closing ??= new Promise<void>((done) => {
              onClosed = done
              worker.postMessage({type: 'close'} satisfies ToListeners)
            }).then(async () => {
              for (const off of forwards) off()
              await worker.terminate()
            })
            return closing
          },
        })
      }
    })
    worker.on('error', (err) => {
      logger.error('the http listeners failed', {error: err.message})
      fail(`the http listeners failed: ${err.message}`)
    })
    worker.on('exit', (code) => {
      if (onClosed) onClosed()
      else if (listening && !closing) fail(`the listeners' thread exited (code ${code})`)
    })
  })
}
