import {DuctileError} from '../errors.js'

/**
 * A failure reported by PostgreSQL (or by the connection to it), as the bridge (postgres.ts) raises it:
 * `code` is the SQLSTATE, or the system error (ECONNREFUSED) when the server was not reached.
 */
export class PgError extends Error {
  readonly code: string | null
  readonly detail: string | null
  constructor(message: string, code: string | null, detail: string | null = null) {
    super(message)
    this.name = 'PgError'
    this.code = code
    this.detail = detail
  }
}

/** Translate PostgreSQL's errors into ones that say what was wrong and what to do (`where` is the URL without its password). */
export function translatePgError(err: PgError, where: string): DuctileError | PgError {
  const code = err.code ?? ''
  const msg = err.message
  if (
    ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', '57P01', '57P02', '57P03', '08006', '08001', '08004'].includes(code)
  ) {
    return new DuctileError('db_unreachable', `cannot reach the PostgreSQL database ${where}: ${msg}`, {
      hint: 'check that the server runs and that the URL names the right host and port (`pg_isready -d URL` tells); the engine retries, a command can be run again',
      cause: err,
    })
  }
  if (code === '28P01' || code === '28000') {
    return new DuctileError('db_auth', `PostgreSQL refused the login to ${where}: ${msg}`, {
      hint: 'check the user and its password (in the URL, a variable in state.url, PGPASSWORD or ~/.pgpass); passwords are never printed',
      cause: err,
    })
  }
  if (code === '3D000') {
    return new DuctileError('db_missing', `the PostgreSQL database of ${where} does not exist`, {
      hint: 'create it (`createdb NAME` as a user allowed to), then `ductile db init --db URL` creates the tables',
      cause: err,
    })
  }
  if (code === '55P03' || code === '40P01' || code === '40001') {
    return new DuctileError('db_locked', `${where}: ${msg}`, {
      hint: 'another session holds a lock this step needed; retry in a moment, and look for a long transaction in pg_stat_activity',
      cause: err,
    })
  }
  if (code === '25006' || code === '42501') {
    return new DuctileError('db_readonly', `${where} cannot be written: ${msg}`, {
      hint: 'connect as a user allowed to write the tables (GRANT), and to a primary, not a read replica',
      cause: err,
    })
  }
  if (code === '53100') {
    return new DuctileError('db_full', `${where}: the server's disk is full (${msg})`, {
      hint: "free space on the server's volume, then run `ductile prune`; nothing was written by the failed step",
      cause: err,
    })
  }
  return err
}
