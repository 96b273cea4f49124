/**
 * One error shape for the whole program: a stable code, a message that says what
 * was wrong, a hint that says what to do, and the exit code scripts and cron can trust.
 */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

/** Every error code, in one list (the exit status of each is exitCodeOf's business). */
export const ERROR_CODES = [
  'usage',
  'validation',
  'not_found',
  'unknown_plugin',
  'db_missing',
  'db_not_sqlite',
  'db_corrupt',
  'db_uninitialised',
  'db_behind',
  'db_original_format',
  'db_foreign',
  'db_newer',
  'db_locked',
  'db_readonly',
  'db_full',
  'db_error',
  'db_unreachable',
  'db_auth',
  'migration_failed',
  'config_invalid',
  'config_missing',
  'engine_running',
  'conflict',
  'state_invalid',
  'route_failed',
  'runtime',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export class DuctileError extends Error {
  readonly code: ErrorCode
  readonly exitCode: number
  readonly hint?: string

  constructor(code: ErrorCode, message: string, opts: {hint?: string; cause?: unknown} = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'DuctileError'
    this.code = code
    this.hint = opts.hint
    this.exitCode = exitCodeOf(code)
  }
}

/**
 * Codes that say the request itself was wrong (a flag, a value, the config, or an action the job's state
 * does not allow): running it again unchanged cannot succeed. The same code exits the same way everywhere.
 */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'usage',
  'validation',
  'unknown_plugin',
  'config_invalid',
  'config_missing',
  'conflict',
  'route_failed',
])

/** The exit status of an error code: 2 for the request's own fault, 1 for everything else. */
export function exitCodeOf(code: ErrorCode): number {
  return USAGE_CODES.has(code) ? EXIT_USAGE : EXIT_FAILURE
}

/** The message of anything thrown: an Error's message, else the value in words. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export function usageError(message: string, hint?: string): DuctileError {
  return new DuctileError('usage', message, {hint})
}

/** Closed vocabularies: an unknown value is refused with a message that lists the allowed ones. */
export function assertOneOf<T extends string>(what: string, value: string, allowed: readonly T[]): asserts value is T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw usageError(`unknown ${what} "${value}"`, `allowed: ${allowed.join(', ')}`)
  }
}
