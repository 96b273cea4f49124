import type {PluginResponse, RunResult} from './runner.js'

/**
 * What an attempt's end means for its job, decided without a database or a process: the worker loop writes
 * what these functions decide, and the fast tests check the decisions directly.
 */

/** The status an attempt's job_log row and transition record. */
export type AttemptStatus = 'succeeded' | 'failed' | 'timed_out' | 'skipped'

export type Outcome =
  /** A valid `status: ok` response: write its state updates and events, then complete the job. */
  | {kind: 'succeed'; response: PluginResponse}
  /** The attempt failed and the job runs again at `delayMs` from now; the attempt is stored as `attemptStatus`. */
  | {kind: 'retry'; attemptStatus: 'failed' | 'timed_out'; error: string; delayMs: number}
  /** The job ends with this status. */
  | {kind: 'end'; status: 'failed' | 'timed_out'; error: string}

/** Every outcome but success: what the store writes for a failed attempt. */
export type Failure = Exclude<Outcome, {kind: 'succeed'}>

export interface AttemptOf {
  attempt: number
  max_attempts: number
}

/**
 * The attempt's outcome from the plugin's result: a failure runs again while attempts remain and the failure
 * is retryable (a plugin that says `retry: false` or exits 78 is not); a timeout keeps its own status.
 */
export function decideOutcome(
  job: AttemptOf,
  result: Pick<RunResult, 'kind' | 'retryable' | 'error' | 'response'>,
  backoffBaseMs: number,
  random: () => number = Math.random,
): Outcome {
  if (result.kind === 'ok' && result.response) return {kind: 'succeed', response: result.response}
  const error = result.error ?? 'plugin failed'
  const status = result.kind === 'timeout' ? 'timed_out' : 'failed'
  if (result.retryable && job.attempt < job.max_attempts)
    return {kind: 'retry', attemptStatus: status, error, delayMs: retryDelay(backoffBaseMs, job.attempt, random)}
  return {kind: 'end', status, error}
}

/**
 * A failure of the engine itself after the claim (a write that failed, a crash in our code): the attempt
 * failed and the job runs again while attempts remain; the plugin is not to blame, so retry is not its call.
 */
export function decideAbandoned(job: AttemptOf, error: string, backoffBaseMs: number, random: () => number = Math.random): Failure {
  if (job.attempt < job.max_attempts) return {kind: 'retry', attemptStatus: 'failed', error, delayMs: retryDelay(backoffBaseMs, job.attempt, random)}
  return {kind: 'end', status: 'failed', error}
}

/** How long before a failed attempt runs again: base·2^(n−1) plus up to base/4 of jitter (n = the attempt that failed). */
export function retryDelay(baseMs: number, attempt: number, random: () => number = Math.random): number {
  return baseMs * 2 ** (attempt - 1) + Math.floor(random() * (baseMs / 4 + 1))
}
