import type {EventEmitter} from 'node:events'

import type {Job} from '../schema/types.js'
import {errorMessage} from '../errors.js'
import type {BreakerChange} from './breakers.js'
import type {Logger} from './log.js'
import type {PluginResponse} from './runner.js'

/** The terminal statuses a job reaches in the engine (recovery marks a job dead after its last attempt). */
export type EndStatus = 'succeeded' | 'failed' | 'timed_out' | 'skipped' | 'dead'

export interface JobEnd {
  job: Job
  status: EndStatus
  /**
   * False when the job ended without its plugin running: a skipped step, or a job that failed before a plugin
   * could start (unknown plugin or command, a row that makes no request). Lifecycle hooks ignore these.
   */
  ran: boolean
  /** The plugin's response (absent when no plugin ran, or its output was not a response). */
  response?: PluginResponse
  error: string | null
}

/**
 * What the engine tells whoever listens (`engine.events.on(...)`), in the manner of graphile-worker's
 * WorkerEventMap: each event has one typed payload, and a listener cannot change the engine's course (a
 * listener that throws is logged, not propagated).
 */
export interface JobRetry {
  job: Job
  error: string | null
  retryAt: string
}

export interface EngineEventMap {
  /** A job's attempt was claimed and its plugin is about to start. */
  'job:start': [{job: Job}]
  /** A job reached a terminal status (its row says so, outside any transaction); see JobEnd.ran. */
  'job:end': [JobEnd]
  /** An attempt failed and the job was requeued for a later attempt. */
  'job:retry': [JobRetry]
  /** A circuit breaker changed state. */
  'breaker:change': [BreakerChange]
}

/** Tell the listeners; a listener that throws is logged and changes nothing of the job. */
export function emitEngineEvent<K extends keyof EngineEventMap>(
  events: EventEmitter<EngineEventMap>,
  logger: Logger,
  name: K,
  ...args: EngineEventMap[K]
): void {
  try {
    ;(events.emit as (n: K, ...a: EngineEventMap[K]) => boolean)(name, ...args)
  } catch (err) {
    logger.error(`a ${name} listener failed`, {error: errorMessage(err)})
  }
}

/** Tell the listeners a job ended. */
export function emitJobEnd(events: EventEmitter<EngineEventMap>, end: JobEnd, logger: Logger): void {
  emitEngineEvent(events, logger, 'job:end', end)
}
