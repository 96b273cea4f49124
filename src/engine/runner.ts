import {type ChildProcess, spawn} from 'node:child_process'

import {capture} from './capture.js'
import type {Spawner} from './spawner.js'
import {errorMessage} from '../errors.js'

/**
 * One plugin process under protocol v2: spawn the entrypoint with no
 * arguments in its own process group and an allowlisted environment, write one JSON request and close
 * stdin, read one JSON response. stdout is capped (over: failed, prefix kept), stderr truncated. On timeout:
 * SIGTERM to the group, a grace period, SIGKILL.
 */

export const STDOUT_CAP = 10 * 1024 * 1024
export const STDERR_CAP = 65_536
/** What job_log keeps of an output that went over STDOUT_CAP: its head, and how much was dropped. */
export const OVERFLOW_KEEP = 65_536
export const KILL_GRACE_MS = 5_000
export const EXIT_NO_RETRY = 78

/** Environment names copied from the engine to plugins, plus service.plugin_env_passthrough. */
export const ENV_ALLOWLIST = [
  'PATH',
  'HOME',
  'TZ',
  'LANG',
  'LANGUAGE',
  'TMPDIR',
  'LC_ALL',
  'LC_CTYPE',
  'LC_NUMERIC',
  'LC_TIME',
  'LC_COLLATE',
  'LC_MONETARY',
  'LC_MESSAGES',
  'LC_PAPER',
  'LC_NAME',
  'LC_ADDRESS',
  'LC_TELEPHONE',
  'LC_MEASUREMENT',
  'LC_IDENTIFICATION',
]

export function pluginEnv(source: Record<string, string | undefined>, passthrough: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const k of [...ENV_ALLOWLIST, ...passthrough]) {
    const v = source[k]
    if (v !== undefined) env[k] = v
  }
  return env
}

export interface PluginRequest {
  protocol: 2
  job_id: string
  command: string
  config: Record<string, unknown>
  state: Record<string, unknown>
  context: Record<string, unknown>
  payload?: unknown
  event?: unknown
  deadline_at: string
  instance: string
}

export interface PluginEvent {
  type: string
  payload?: unknown
  dedupe_key?: string
  event_id?: string
  timestamp?: string
  source?: string
}

export interface PluginResponse {
  status: 'ok' | 'error'
  result?: unknown
  error?: string
  retry?: boolean
  events?: PluginEvent[]
  state_updates?: Record<string, unknown>
  logs?: {level?: string; message?: string}[]
}

export type RetryReason = 'plugin_error' | 'plugin_retry_false' | 'exit_code_78' | 'timeout' | 'spawn_error' | 'output_limit'

export interface RunResult {
  /** ok: a valid `status: ok` response. Every other kind is a failure. */
  kind: 'ok' | 'error' | 'timeout' | 'spawn_error' | 'invalid_response' | 'output_limit'
  response?: PluginResponse
  /** Raw stdout (UTF-8, invalid bytes replaced); null when empty. */
  stdout: string | null
  stderr: string
  stderrTruncated: boolean
  exitCode: number | null
  signal: NodeJS.Signals | null
  pid: number | null
  durationMs: number
  /** The failure in words, for last_error. */
  error?: string
  retryable: boolean
  reason?: RetryReason
}

export interface RunOptions {
  entrypoint: string
  request: PluginRequest
  env: Record<string, string>
  timeoutMs: number
  graceMs?: number
  stdoutCap?: number
  stderrCap?: number
  cwd?: string
  onSpawn?: (pid: number) => void
  /** Start the process through the spawn helper instead of spawning from this process. */
  spawner?: Spawner
}

/** Validate a decoded response envelope; returns the problem in the original's words, or null. */
export function validateResponse(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return `response is not a JSON object (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})`
  }
  const r = value as Record<string, unknown>
  if (r.status === undefined) return 'response missing required field: status'
  if (r.status !== 'ok' && r.status !== 'error') return `invalid status value ${JSON.stringify(r.status)} (want "ok" or "error")`
  if (r.status === 'error' && (typeof r.error !== 'string' || r.error.trim() === '')) return 'response has status=error but no error message'
  if (r.status === 'ok' && (r.result === undefined || r.result === null || (typeof r.result === 'string' && r.result.trim() === ''))) {
    return 'response has status=ok but no result message'
  }
  if (r.events !== undefined && !Array.isArray(r.events)) return 'response field events must be a list'
  if (Array.isArray(r.events)) {
    for (const [i, e] of r.events.entries()) {
      if (!e || typeof e !== 'object' || typeof (e as {type?: unknown}).type !== 'string' || (e as {type: string}).type === '') {
        return `response events[${i}] needs a non-empty string type`
      }
    }
  }
  if (r.state_updates !== undefined && (r.state_updates === null || typeof r.state_updates !== 'object' || Array.isArray(r.state_updates))) {
    return 'response field state_updates must be an object'
  }
  return null
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
}

export function runPlugin(opts: RunOptions): Promise<RunResult> {
  // Encoded before any process or timer exists: a request that cannot be encoded starts nothing.
  let input: string
  try {
    input = `${JSON.stringify(opts.request)}\n`
  } catch (e) {
    return Promise.resolve({...spawnFailure(e as Error, performance.now()), error: `could not encode the plugin request: ${errorMessage(e)}`, retryable: false})
  }
  return opts.spawner ? runViaSpawner(opts, opts.spawner, input) : runHere(opts, input)
}

/**
 * The timeout of one run: when it fires and the process has not exited, SIGTERM to its group,
 * then SIGKILL after the grace period. A process that already exited keeps its output (the edge race rule).
 */
function armTimeout(timeoutMs: number, graceMs: number, state: {pid: number | null; exited: boolean}) {
  let timedOut = false
  let killTimer: NodeJS.Timeout | undefined
  const timer = setTimeout(() => {
    if (state.exited) return
    timedOut = true
    if (state.pid) killGroup(state.pid, 'SIGTERM')
    killTimer = setTimeout(() => {
      if (state.pid) killGroup(state.pid, 'SIGKILL')
    }, graceMs)
  }, timeoutMs)
  return {
    timedOut: () => timedOut,
    cancel() {
      clearTimeout(timer)
      clearTimeout(killTimer)
    },
  }
}

/** The same run through the spawn helper: it captures the output; timeouts and kills stay here. */
function runViaSpawner(opts: RunOptions, spawner: Spawner, input: string): Promise<RunResult> {
  const stdoutCap = opts.stdoutCap ?? STDOUT_CAP
  const grace = opts.graceMs ?? KILL_GRACE_MS
  const started = performance.now()
  const state = {pid: null as number | null, exited: false}
  const timeout = armTimeout(opts.timeoutMs, grace, state)
  const request = {
    entrypoint: opts.entrypoint,
    cwd: opts.cwd,
    env: opts.env,
    input,
    stdoutCap,
    stderrCap: opts.stderrCap ?? STDERR_CAP,
  }
  return spawner
    .run(request, (p) => {
      state.pid = p
      if (timeout.timedOut()) killGroup(p, 'SIGTERM')
      opts.onSpawn?.(p)
    })
    .then((out) => {
      state.exited = true
      timeout.cancel()
      const pid = state.pid
      if (out.kind === 'error') {
        // The helper died under a running plugin: stop the plugin too, so its job never runs twice at once.
        if (pid) killGroup(pid, 'SIGKILL')
        return spawnFailure(new Error(out.message), started)
      }
      return classify({
        stdout: out.stdout.length ? out.stdout : null,
        stderr: out.stderr,
        stderrTruncated: out.stderrTruncated,
        exitCode: out.code,
        signal: out.signal,
        pid,
        overflow: out.overflow,
        timedOut: timeout.timedOut(),
        durationMs: performance.now() - started,
        timeoutMs: opts.timeoutMs,
        stdoutCap,
      })
    })
}

function runHere(opts: RunOptions, input: string): Promise<RunResult> {
  const stdoutCap = opts.stdoutCap ?? STDOUT_CAP
  const started = performance.now()
  let child: ChildProcess
  try {
    child = spawn(opts.entrypoint, [], {cwd: opts.cwd, env: opts.env, detached: true, stdio: ['pipe', 'pipe', 'pipe']})
  } catch (e) {
    return Promise.resolve(spawnFailure(e instanceof Error ? e : new Error(String(e)), started))
  }
  const pid = child.pid ?? null
  const state = {pid, exited: false}
  const timeout = armTimeout(opts.timeoutMs, opts.graceMs ?? KILL_GRACE_MS, state)
  if (pid) opts.onSpawn?.(pid)
  const kill = () => {
    if (pid) killGroup(pid, 'SIGKILL')
  }
  const captured = capture(child, {input, stdoutCap, stderrCap: opts.stderrCap ?? STDERR_CAP, onOverflow: kill, onExit: () => (state.exited = true)})
  return captured.then((r) => {
    timeout.cancel()
    // Anything the plugin left behind in its group (a child that kept stdout open) goes with it.
    kill()
    if ('error' in r) return spawnFailure(r.error, started)
    const stdout = r.stdout.length ? r.stdout.toString('utf8') : null
    return classify({
      stdout,
      stderr: r.stderr.toString('utf8'),
      stderrTruncated: r.stderrTruncated,
      exitCode: r.code,
      signal: r.signal,
      pid,
      overflow: r.overflow,
      timedOut: timeout.timedOut(),
      durationMs: performance.now() - started,
      timeoutMs: opts.timeoutMs,
      stdoutCap,
    })
  })
}

function spawnFailure(e: Error, started: number): RunResult {
  return {
    kind: 'spawn_error',
    stdout: null,
    stderr: '',
    stderrTruncated: false,
    exitCode: null,
    signal: null,
    pid: null,
    durationMs: performance.now() - started,
    error: `plugin spawn failed: ${e.message}`,
    retryable: true,
    reason: 'spawn_error',
  }
}

/** What a run produced before it is classified. */
interface Raw extends Pick<RunResult, 'stdout' | 'stderr' | 'stderrTruncated' | 'exitCode' | 'signal' | 'pid' | 'durationMs'> {
  overflow: boolean
  timedOut: boolean
  timeoutMs: number
  stdoutCap: number
}

function fmtMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/** What a run's output means: ok, a plugin error, a timeout, a response that is not one, an output over the cap. */
export function classify(r: Raw): RunResult {
  const base = {
    stdout: r.stdout,
    stderr: r.stderr,
    stderrTruncated: r.stderrTruncated,
    exitCode: r.exitCode,
    signal: r.signal,
    pid: r.pid,
    durationMs: r.durationMs,
  }
  const exit78 = r.exitCode === EXIT_NO_RETRY
  if (r.timedOut) {
    return {...base, stdout: null, kind: 'timeout', error: `plugin execution timed out after ${fmtMs(r.timeoutMs)}`, retryable: true, reason: 'timeout'}
  }
  if (r.overflow) {
    const read = Buffer.byteLength(r.stdout ?? '')
    const kept = Math.min(OVERFLOW_KEEP, read)
    return {
      ...base,
      // The head only: a row of 10 MiB helps nobody and slows every query that reads it.
      stdout: r.stdout === null ? null : Buffer.from(r.stdout).subarray(0, kept).toString('utf8'),
      kind: 'output_limit',
      error: `plugin stdout exceeded ${r.stdoutCap} bytes and was cut there; the result keeps the first ${kept} bytes, ${read - kept} more were dropped`,
      retryable: !exit78,
      reason: exit78 ? 'exit_code_78' : 'output_limit',
    }
  }
  const exitNote = r.exitCode !== null && r.exitCode !== 0 ? ` (exit status ${r.exitCode})` : r.signal ? ` (killed by ${r.signal})` : ''
  const text = r.stdout?.trim() ?? ''
  let problem: string | null = null
  let value: unknown
  if (text === '') problem = 'plugin produced no output on stdout'
  else {
    try {
      value = JSON.parse(text)
      problem = validateResponse(value)
    } catch (e) {
      problem = `plugin output is not valid JSON: ${errorMessage(e)}`
    }
  }
  if (problem) {
    return {
      ...base,
      kind: 'invalid_response',
      error: `invalid plugin response: ${problem}${exitNote}`,
      retryable: !exit78,
      reason: exit78 ? 'exit_code_78' : 'spawn_error',
    }
  }
  const response = value as PluginResponse
  if (response.status === 'ok') return {...base, kind: 'ok', response, retryable: false}
  const noRetry = response.retry === false
  return {
    ...base,
    kind: 'error',
    response,
    error: response.error,
    retryable: !exit78 && !noRetry,
    reason: exit78 ? 'exit_code_78' : noRetry ? 'plugin_retry_false' : 'plugin_error',
  }
}
