import type {Db} from './db.js'
import {TABLES} from './definition.js'

/**
 * What PostgreSQL has instead of SQLite's pragmas and files (db info, doctor, vacuum, metrics): the server's
 * version and the database's size, each of our tables' live and dead rows and last (auto)vacuum, replication.
 */

export interface PgServerStats {
  serverVersion: string
  database: string
  databaseBytes: number
  inRecovery: boolean
}

export function pgServerStats(db: Db): PgServerStats {
  const r = db.query(
    `SELECT current_setting('server_version') AS v, current_database() AS d, pg_database_size(current_database()) AS bytes, pg_is_in_recovery() AS rec`,
  )[0] as {v: string; d: string; bytes: number; rec: boolean}
  return {serverVersion: r.v, database: r.d, databaseBytes: Number(r.bytes), inRecovery: Boolean(r.rec)}
}

export interface PgTableHealth {
  table: string
  liveRows: number
  deadRows: number
  /** Dead rows as a share of all (0–1): the bloat autovacuum has not reclaimed yet. */
  deadRatio: number
  totalBytes: number
  lastVacuum: string | null
  lastAnalyze: string | null
}

/** Our tables as pg_stat_user_tables sees them (estimates, as autovacuum's own). */
export function pgTableHealth(db: Db): PgTableHealth[] {
  const ours = new Set(TABLES.map((t) => t.name))
  const rows = db.query(
    `SELECT relname AS t, n_live_tup AS live, n_dead_tup AS dead, pg_total_relation_size(relid) AS bytes,
            to_char(greatest(last_vacuum, last_autovacuum) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS vac,
            to_char(greatest(last_analyze, last_autoanalyze) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS ana
       FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY relname`,
  ) as {t: string; live: number; dead: number; bytes: number; vac: string | null; ana: string | null}[]
  return rows
    .filter((r) => ours.has(r.t))
    .map((r) => ({
      table: r.t,
      liveRows: Number(r.live),
      deadRows: Number(r.dead),
      deadRatio: Number(r.live) + Number(r.dead) > 0 ? Number(r.dead) / (Number(r.live) + Number(r.dead)) : 0,
      totalBytes: Number(r.bytes),
      lastVacuum: r.vac,
      lastAnalyze: r.ana,
    }))
}

export interface PgReplica {
  name: string
  state: string
  /** Seconds the replica's replay is behind (null when the server does not know). */
  replayLagSeconds: number | null
}

/** Standbys streaming from this server (none on a server without replication). */
export function pgReplicas(db: Db): PgReplica[] {
  const rows = db.query(`SELECT application_name AS n, state AS s, extract(epoch FROM replay_lag)::double precision AS lag FROM pg_stat_replication`) as {
    n: string
    s: string
    lag: number | null
  }[]
  return rows.map((r) => ({name: r.n, state: r.s, replayLagSeconds: r.lag === null ? null : Number(r.lag)}))
}

/** VACUUM (ANALYZE) each of our tables (outside a transaction, as VACUUM must be). */
export function pgVacuumAnalyze(db: Db, onTable?: (table: string) => void): string[] {
  const done: string[] = []
  for (const t of pgTableHealth(db)) {
    onTable?.(t.table)
    db.exec(`VACUUM (ANALYZE) ${t.table}`)
    done.push(t.table)
  }
  return done
}
