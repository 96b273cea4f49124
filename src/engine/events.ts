import type {EventEmitter} from 'node:events'

import type {Job} from '../schema/types.js'
import {errorMessage} from '../errors.js'
import type {Logger} from './log.js'
import type {PluginResponse} from './runner.js'

/** The terminal statuses a job reaches in the engine (recovery marks a job dead after its last attempt). */
export type EndStatus = 'succeeded' | 'failed' | 'timed_out' | 'skipped' | 'dead'

export interface JobEnd {
  job: Job
  status: EndStatus
  /** The plugin's response (absent when no plugin ran, or its output was not a response). */
  response?: PluginResponse
  error: string | null
}

/**
 * What the engine tells whoever listens (`engine.events.on(...)`), in the manner of graphile-worker's
 * WorkerEventMap: each event has one typed payload, and a listener cannot change the engine's course (a
 * listener that throws is logged, not propagated).
 */
export interface EngineEventMap {
  /**
   * A job's plugin ran and the job reached a terminal status, or recovery ended it dead; its row says so
   * (outside any transaction). Skipped steps and jobs that fail before a plugin starts (unknown plugin or
   * command, a row that makes no request) are not told, as the lifecycle hooks never were.
   */
  'job:end': [JobEnd]
}

/** Tell the listeners a job ended; a listener that throws is logged and changes nothing of the job. */
export function emitJobEnd(events: EventEmitter<EngineEventMap>, end: JobEnd, logger: Logger): void {
  try {
    events.emit('job:end', end)
  } catch (err) {
    logger.error('a job:end listener failed', {job: end.job.id, error: errorMessage(err)})
  }
}
