import {isPgUrl} from './pg-url.js'
import {type Db, type OpenOptions, asSqlite, busyTimeoutFromEnv, openDb} from './db.js'
import {pgServerStats} from './pg-admin.js'
import {fileStats} from './sqlite.js'
import {openPg} from './postgres.js'

/**
 * Open the store a --db / DUCTILE_DB / state value names: a postgres:// or postgresql:// URL is PostgreSQL
 * (credentials from the URL, PG* variables or ~/.pgpass, as libpq reads them), anything else a SQLite file.
 */
export function openStore(target: string, opts: OpenOptions & {onNotify?: (channel: string, payload: string) => void; applicationName?: string}): Db {
  if (!isPgUrl(target)) return openDb(target, opts)
  return openPg(target, {
    mode: opts.mode,
    busyTimeoutMs: opts.busyTimeoutMs ?? busyTimeoutFromEnv(),
    check: opts.check,
    onNotify: opts.onNotify,
    applicationName: opts.applicationName,
  })
}

export interface StoreSize {
  /** The SQLite file, or the PostgreSQL database (pg_database_size). */
  fileBytes: number
  /** SQLite's WAL file (0 on PostgreSQL: the server's WAL is shared by its databases). */
  walBytes: number
  freelistCount: number
  pageCount: number
}

/** How big the store is (metrics, the Overwatch). */
export function storeSize(db: Db): StoreSize {
  const lite = asSqlite(db)
  if (lite) return fileStats(lite)
  return {fileBytes: pgServerStats(db).databaseBytes, walBytes: 0, freelistCount: 0, pageCount: 0}
}
