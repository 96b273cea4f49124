import {statfsSync} from 'node:fs'
import {dirname} from 'node:path'

import {liveLockHolder, readLock} from '../lib/lock.js'
import {activeSchedules, breakersNotClosed, lateSchedules, countFinishedBefore, lastClaimAt, oldestDueJob, runningSince} from '../queries/health.js'
import {type Db, type SqliteDb, asSqlite} from '../schema/db.js'
import {checkSchema} from '../schema/migrations.js'
import {JOURNAL_SIZE_LIMIT, fileStats, quickCheck} from '../schema/sqlite.js'
import {pgReplicas, pgTableHealth} from '../schema/pg-admin.js'
import {listLiveEngines} from '../queries/engines.js'
import {formatTs, parseTs} from '../schema/time.js'
import {errorMessage} from '../errors.js'
import {DEFAULT_ENGINE_LEASE_MS, DEFAULT_TIMEOUTS_MS} from '../config/defaults.js'
import {KILL_GRACE_MS} from '../engine/runner.js'
import {isLoopback} from '../config/ingress.js'
import type {Config} from '../config/types.js'

/**
 * `ductile doctor`: one verdict per check, with the figure it judged and what to do. Each check is a plain
 * function of the database (its reads are in queries/health.ts), the file, the lock and a few thresholds,
 * so tests can break each condition on its own.
 */

export type Verdict = 'ok' | 'warn' | 'fail'

export interface Check {
  name: string
  status: Verdict
  figure: string | number | null
  detail: string
  hint?: string
}

export interface DoctorOptions {
  now?: Date
  /** Longest plugin timeout (+ kill grace): running longer than this is stuck. */
  stuckAfterMs: number
  maxWalBytes?: number
  maxFreelistRatio?: number
  /** Terminal job_queue rows older than this mean prune is not running. */
  queueRetentionMs?: number
  /** A missing engine is a warning, not a failure. */
  engineOptional?: boolean
  /** Also run PRAGMA quick_check, which reads every page of the file (about a second per GB). */
  integrity?: boolean
  /** Free space on the database's volume below this fails (default 256 MiB). */
  minFreeBytes?: number
  /** Due queued work older than this with no claim as recent fails: the engine is not claiming (default 60 s). */
  claimAfterMs?: number
  /** service.tick_interval: a due schedule may wait this long for the scheduler's next look. */
  tickMs?: number
  /** PostgreSQL: an engine whose heartbeat is older than this is dead (service.engine_lease). */
  engineLeaseMs?: number
  /** PostgreSQL: a standby further behind than this (seconds) is a warning (default 60). */
  maxReplicationLagSeconds?: number
}

const ok = (name: string, figure: Check['figure'], detail: string): Check => ({name, status: 'ok', figure, detail})
const fail = (name: string, figure: Check['figure'], detail: string, hint: string, status: Verdict = 'fail'): Check => ({name, status, figure, detail, hint})

function safe(name: string, fn: () => Check): Check {
  try {
    return fn()
  } catch (err) {
    return fail(name, null, `could not check: ${errorMessage(err)}`, 'run `ductile doctor` again; if it persists the file may be damaged')
  }
}

/**
 * Where the engine listens for HTTP (a config with api.enabled or webhooks.listen): beyond localhost in plain
 * HTTP is a warning, since tokens and webhook bodies would cross the network in the clear.
 */
export function listenCheck(cfg: Pick<Config, 'api' | 'webhooks'>): Check | null {
  const listeners = [
    ...(cfg.api.enabled ? [{what: 'API', key: 'api.listen', l: cfg.api.listen}] : []),
    ...(cfg.webhooks.listen ? [{what: 'webhooks', key: 'webhooks.listen', l: cfg.webhooks.listen}] : []),
  ]
  if (listeners.length === 0) return null
  const exposed = listeners.filter((x) => !isLoopback(x.l.host))
  const all = listeners.map((x) => `${x.what} on ${x.l.text}`).join(', ')
  if (exposed.length === 0) return ok('listen', all, `${all}: localhost only`)
  return fail(
    'listen',
    all,
    `${exposed.map((x) => `${x.what} on ${x.l.text}`).join(', ')}: beyond localhost, in plain HTTP`,
    `put a TLS-terminating proxy (nginx, caddy) in front and bind ${exposed.map((x) => x.key).join(' and ')} to 127.0.0.1`,
    'warn',
  )
}

/** Free space on the database's volume; needs no open database (a full disk may refuse to open one). */
export function diskSpaceCheck(dbPath: string, minFreeBytes = 256 * 1048576): Check {
  return safe('disk_space', () => {
    const st = statfsSync(dirname(dbPath))
    const free = st.bavail * st.bsize
    const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`
    return free >= minFreeBytes
      ? ok('disk_space', free, `${mib(free)} free on the database's volume (minimum ${mib(minFreeBytes)})`)
      : fail(
          'disk_space',
          free,
          `only ${mib(free)} free on the database's volume (minimum ${mib(minFreeBytes)}): the engine cannot record outcomes on a full disk`,
          'free space on that volume, then run `ductile prune` and `ductile vacuum`',
        )
  })
}

export function runChecks(db: Db, o: DoctorOptions): Check[] {
  const now = o.now ?? new Date()
  const checks: Check[] = []
  checks.push(
    safe('schema', () => {
      const {problems} = checkSchema(db)
      const errors = problems.filter((p) => p.severity === 'error')
      return errors.length === 0
        ? ok('schema', 0, 'every table, column and index is present')
        : fail('schema', errors.length, errors.map((p) => p.message).join('; '), `run \`${errors[0]?.fix}\``)
    }),
  )
  const lite = asSqlite(db)
  checks.push(...(lite ? fileChecks(lite, o) : postgresChecks(db, o, now)))
  checks.push(
    safe('stuck_jobs', () => {
      const cutoff = formatTs(new Date(now.getTime() - o.stuckAfterMs))
      const rows = runningSince(db, cutoff)
      const first = rows[0]
      return !first
        ? ok('stuck_jobs', 0, `no job running longer than ${Math.round(o.stuckAfterMs / 1000)} s (the longest plugin timeout)`)
        : fail(
            'stuck_jobs',
            rows.length,
            `${rows.length} job(s) running longer than the longest timeout, e.g. ${first.plugin} ${first.id} since ${first.started_at}`,
            '`ductile jobs stuck` shows whether their processes are alive; restarting the engine recovers orphans',
          )
    }),
  )
  checks.push(
    safe('claiming', () => {
      const after = o.claimAfterMs ?? 60_000
      const nowTs = formatTs(now)
      const due = oldestDueJob(db, nowTs)
      const waitedMs = due ? now.getTime() - (parseTs(due.created_at)?.getTime() ?? now.getTime()) : 0
      if (!due || waitedMs <= after) return ok('claiming', 0, `no due job has waited longer than ${Math.round(after / 1000)} s`)
      const last = lastClaimAt(db)
      const sinceClaim = last ? now.getTime() - (parseTs(last)?.getTime() ?? 0) : Number.POSITIVE_INFINITY
      if (sinceClaim <= after)
        return ok(
          'claiming',
          Math.round(waitedMs / 1000),
          `the engine claimed a job ${Math.round(sinceClaim / 1000)} s ago (the oldest due job waits for its plugin's turn)`,
        )
      return fail(
        'claiming',
        Math.round(waitedMs / 1000),
        `the engine is not claiming: ${due.plugin} job ${due.id} has waited ${Math.round(waitedMs / 1000)} s and the last claim was ${last ? `at ${last}` : 'never'}`,
        'check the engine log (a full disk or a database error stops claims); `ductile jobs list --status queued` shows the backlog',
      )
    }),
  )
  checks.push(
    safe('breakers', () => {
      const rows = breakersNotClosed(db)
      return rows.length === 0
        ? ok('breakers', 0, 'every circuit breaker is closed')
        : fail(
            'breakers',
            rows.length,
            rows.map((r) => `${r.plugin} ${r.command} ${r.state}`).join(', '),
            '`ductile breakers history PLUGIN` says why; `ductile breakers reset PLUGIN` closes one by hand',
          )
    }),
  )
  checks.push(
    safe('schedules', () => {
      const rows = activeSchedules(db)
      const late = lateSchedules(rows, now, o.tickMs)
      return late.length === 0
        ? ok('schedules', 0, `${rows.length} active schedule(s), none overdue by more than its interval`)
        : fail(
            'schedules',
            late.length,
            `overdue: ${late.map((r) => `${r.plugin}/${r.schedule_id} (due ${r.next_run_at})`).join(', ')}`,
            'is the engine running? `ductile schedules list` shows each next run',
          )
    }),
  )
  if (lite) checks.push(lockCheck(lite, o))
  checks.push(
    safe('retention', () => {
      const retention = o.queueRetentionMs ?? 86_400_000
      const cutoff = formatTs(new Date(now.getTime() - retention - 3_600_000))
      const n = countFinishedBefore(db, cutoff)
      return n === 0
        ? ok('retention', 0, 'no finished queue rows past their retention')
        : fail(
            'retention',
            n,
            `${n} finished job_queue row(s) older than the retention (${Math.round(retention / 3_600_000)} h): pruning is not running`,
            'run `ductile prune` from cron, or keep the engine running (it prunes every tick)',
          )
    }),
  )
  return checks
}

/** The SQLite file's checks: integrity, journal mode, WAL and free pages, the volume's free space. */
function fileChecks(db: SqliteDb, o: DoctorOptions): Check[] {
  const out: Check[] = []
  if (o.integrity)
    out.push(
      safe('quick_check', () => {
        const r = quickCheck(db)
        return r.length === 1 && r[0] === 'ok'
          ? ok('quick_check', 'ok', 'PRAGMA quick_check found no damage')
          : fail(
              'quick_check',
              r.length,
              r.slice(0, 3).join('; '),
              'the file is damaged: stop the engine and restore from a backup (`ductile db backup` makes them)',
            )
      }),
    )
  const stats = fileStats(db)
  out.push(
    stats.journalMode === 'wal'
      ? ok('journal_mode', stats.journalMode, 'WAL: readers never block the engine')
      : fail(
          'journal_mode',
          stats.journalMode,
          `journal_mode is ${stats.journalMode}, not wal`,
          'start the engine (it sets WAL) or run `sqlite3 FILE "PRAGMA journal_mode=WAL;"`',
        ),
  )
  out.push(
    stats.synchronous === 1
      ? ok('synchronous', stats.synchronous, 'NORMAL (1), as Ductile sets on every connection')
      : fail(
          'synchronous',
          stats.synchronous,
          `synchronous is ${stats.synchronous}, not NORMAL (1)`,
          'Ductile sets it per connection; check for another program opening the file',
        ),
  )
  const maxWal = o.maxWalBytes ?? JOURNAL_SIZE_LIMIT
  out.push(
    stats.walBytes <= maxWal
      ? ok('wal_size', stats.walBytes, `WAL ${(stats.walBytes / 1048576).toFixed(1)} MiB, limit ${(maxWal / 1048576).toFixed(0)} MiB`)
      : fail(
          'wal_size',
          stats.walBytes,
          `WAL is ${(stats.walBytes / 1048576).toFixed(1)} MiB, above the ${(maxWal / 1048576).toFixed(0)} MiB limit: checkpoints are not keeping up`,
          'look for a long-running reader holding a snapshot; `ductile prune` ends with a TRUNCATE checkpoint',
        ),
  )
  const ratio = stats.pageCount ? stats.freelistCount / stats.pageCount : 0
  const maxFree = o.maxFreelistRatio ?? 0.25
  out.push(
    ratio <= maxFree
      ? ok('freelist', Number(ratio.toFixed(3)), `${stats.freelistCount} of ${stats.pageCount} pages free`)
      : fail(
          'freelist',
          Number(ratio.toFixed(3)),
          `${(ratio * 100).toFixed(0)}% of the file is free pages (${stats.freelistCount} of ${stats.pageCount})`,
          'run `ductile vacuum` to give the space back',
        ),
  )
  out.push(diskSpaceCheck(db.path, o.minFreeBytes))
  return out
}

/** SQLite: the one engine holds the lock file. */
function lockCheck(db: SqliteDb, o: DoctorOptions): Check {
  return safe('engine', () => {
    const live = liveLockHolder(db.path)
    if (live) return ok('engine', live.pid, `engine PID ${live.pid} on ${live.host} holds the lock`)
    const stale = readLock(db.path)
    if (stale)
      return fail(
        'engine',
        stale.pid,
        `the lock names PID ${stale.pid}, which is not running (the engine died)`,
        'start the engine: it takes over the stale lock and recovers running jobs',
      )
    return fail(
      'engine',
      null,
      'no engine holds the lock',
      'start it with `ductile engine start` (or pass --engine-optional where none should run)',
      o.engineOptional ? 'warn' : 'fail',
    )
  })
}

/**
 * PostgreSQL's checks: engines alive (heartbeat within the lease), replication lag, dead-row bloat of our
 * tables. The connection and the schema are checked by opening the database and by the schema check.
 */
function postgresChecks(db: Db, o: DoctorOptions, now: Date): Check[] {
  const out: Check[] = []
  const lease = o.engineLeaseMs ?? DEFAULT_ENGINE_LEASE_MS
  out.push(
    safe('engines', () => {
      const cutoff = formatTs(new Date(now.getTime() - lease))
      const live = listLiveEngines(db)
      const alive = live.filter((e) => e.heartbeat_at >= cutoff)
      const silent = live.filter((e) => e.heartbeat_at < cutoff)
      if (silent.length)
        return fail(
          'engines',
          alive.length,
          `${silent.length} engine(s) silent for longer than the lease (${Math.round(lease / 1000)} s): ${silent.map((e) => `${e.host} pid ${e.pid} (last beat ${e.heartbeat_at})`).join(', ')}`,
          alive.length ? 'a live engine recovers their jobs at its next heartbeat; check those hosts' : 'start an engine: it recovers their running jobs',
          alive.length ? 'warn' : 'fail',
        )
      if (alive.length) return ok('engines', alive.length, `${alive.length} engine(s) alive: ${alive.map((e) => `${e.host} pid ${e.pid}`).join(', ')}`)
      return fail('engines', 0, 'no engine is running on this database', 'start one with `ductile engine start`', o.engineOptional ? 'warn' : 'fail')
    }),
  )
  out.push(
    safe('replication', () => {
      const reps = pgReplicas(db)
      const maxLag = o.maxReplicationLagSeconds ?? 60
      if (reps.length === 0) return ok('replication', 0, 'no standby streams from this server')
      const behind = reps.filter((r) => (r.replayLagSeconds ?? 0) > maxLag)
      return behind.length === 0
        ? ok('replication', reps.length, `${reps.length} standby(s), replay lag at most ${Math.max(...reps.map((r) => r.replayLagSeconds ?? 0)).toFixed(1)} s`)
        : fail(
            'replication',
            behind.length,
            `standby(s) behind by more than ${maxLag} s: ${behind.map((r) => `${r.name} ${r.replayLagSeconds?.toFixed(0)} s`).join(', ')}`,
            'check the standby and its network; a failover to it would lose those seconds of jobs',
            'warn',
          )
    }),
  )
  out.push(
    safe('bloat', () => {
      const maxDead = o.maxFreelistRatio ?? 0.25
      const bloated = pgTableHealth(db).filter((t) => t.deadRows > 10_000 && t.deadRatio > maxDead)
      return bloated.length === 0
        ? ok('bloat', 0, `dead rows below ${Math.round(maxDead * 100)}% in every table (autovacuum keeps up)`)
        : fail(
            'bloat',
            bloated.length,
            bloated.map((t) => `${t.table} ${Math.round(t.deadRatio * 100)}% dead (${t.deadRows} rows, last vacuum ${t.lastVacuum ?? 'never'})`).join('; '),
            'autovacuum is behind (a long transaction holds it back?): `ductile vacuum --analyze` runs VACUUM (ANALYZE) now',
            'warn',
          )
    }),
  )
  return out
}

/** Running longer than the longest plugin timeout (+ kill grace) is stuck; the protocol defaults without a config. */
export function longestTimeout(cfg: Config | null): number {
  const configured = cfg ? Object.values(cfg.plugins).flatMap((p) => Object.values(p.timeouts_ms)) : []
  return Math.max(...(configured.length ? configured : Object.values(DEFAULT_TIMEOUTS_MS))) + KILL_GRACE_MS
}
