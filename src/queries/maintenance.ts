import {type Kysely, type SelectQueryBuilder, sql} from 'kysely'

import {type Db, type Param, type SqliteDb, asSqlite, perHandle} from '../schema/db.js'
import {TERMINAL_STATUSES} from '../schema/definition.js'
import {checkpoint, dataVersion, fileSize, tuneForBatches} from '../schema/sqlite.js'
import {type Clock, formatTs, systemClock} from '../schema/time.js'

/**
 * Retention: delete old rows in short BEGIN IMMEDIATE batches, yield between
 * batches so other writers get the lock, PASSIVE checkpoint between batches and TRUNCATE at the end.
 * `ductile prune` and the engine's periodic retention both call `prune`.
 */

export const PRUNE_TABLES = [
  'job_log',
  'job_queue',
  'job_transitions',
  'job_attempts',
  'circuit_breaker_transitions',
  'schedule_decisions',
  'dedupe_hits',
  'engines',
] as const
export type PruneTable = (typeof PRUNE_TABLES)[number]

const DAY = 86_400_000
export const DEFAULT_RETENTION_MS: Record<PruneTable, number> = {
  job_log: 30 * DAY,
  job_queue: DAY,
  job_transitions: 30 * DAY,
  job_attempts: 30 * DAY,
  circuit_breaker_transitions: 90 * DAY,
  schedule_decisions: 30 * DAY,
  dedupe_hits: 30 * DAY,
  // Engines that stopped (or were declared dead) this long ago; running ones never.
  engines: 30 * DAY,
}

export interface PruneOptions {
  tables?: readonly PruneTable[]
  /** Retention per table in ms (defaults above); 0 or less disables that table. */
  retention?: Partial<Record<PruneTable, number>>
  /** Keep the newest failed job_log row per (plugin, command) whatever its age (default true). */
  keepLastFailure?: boolean
  dryRun?: boolean
  /** Rows per transaction to start with; adapts to keep the work inside each transaction near `batchTargetMs`. */
  batchSize?: number
  /**
   * The work inside one transaction, in ms (default 25). A writer asleep in SQLite's default busy handler
   * looks again 33, 53 and 78 ms after it found the lock taken: at 30 ms a batch and its commit sometimes
   * outlasted the 53 ms look, and the writer (which then also copies our frames in its own automatic
   * checkpoint) waited 101 ms; at 25 ms its worst was 77 ms, for a prune 0–15% longer (bench/RESULTS.md).
   */
  batchTargetMs?: number
  /** The longest pause between batches so other writers get the lock (it ends when one has committed). */
  yieldMs?: number
  clock?: Clock
  onProgress?: (p: {table: PruneTable; deleted: number; total: number}) => void
}

export interface PruneTableResult {
  table: PruneTable
  /** Rows older than this were deleted (or counted, on a dry run). */
  cutoff: string
  retention_ms: number
  deleted: number
  /** Old rows kept on purpose (the newest failure per plugin and command; history of unfinished jobs). */
  kept: number
  batches: number
}

export interface PruneResult {
  dry_run: boolean
  tables: PruneTableResult[]
  total_deleted: number
  duration_ms: number
  wal_bytes_after: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Leave the write lock free until another connection has committed, or `maxMs` after our commit. A writer
 * that found the lock taken is asleep in SQLite's busy handler, which retries in steps of up to 25 ms: the gap
 * must be that long to be sure to take it in (shorter gaps starved such writers for 100+ ms here), but once it
 * has committed, waiting out the rest of the 25 ms made the prune twice as slow as a single DELETE. (A few ms
 * more for the rest of a burst bought the bench's writer nothing: after its commit it is busy copying our
 * batch in its automatic checkpoint.)
 */
async function yieldToWriters(db: SqliteDb, since: {at: number; version: number}, maxMs: number): Promise<void> {
  while (dataVersion(db) === since.version && performance.now() - since.at < maxMs) await sleep(1)
}

/**
 * Wait until every frame in the WAL is copied into the database file (or `maxMs`). A PASSIVE checkpoint
 * returns at once while another connection is checkpointing, so it is retried until it reports all copied.
 */
async function checkpointComplete(db: SqliteDb, maxMs = 100): Promise<void> {
  const until = performance.now() + maxMs
  for (;;) {
    const r = checkpoint(db, 'PASSIVE')
    if ((r.busy === 0 && r.checkpointed >= r.log) || performance.now() > until) return
    await sleep(1)
  }
}

/** Changes whenever another connection commits (PRAGMA data_version). */

/**
 * The newest failed job_log row per (plugin, command): `jobs errors` can always show the last failure.
 * The pairs are walked in job_log_failed_plugin_command_idx, one probe each: a GROUP BY over every failure
 * held a read snapshot for a quarter of a second here, and the WAL cannot restart under a reader.
 */
export function findLastFailureIds(db: Db): string[] {
  const {firstPair, nextPair, newest} = failureStatements(db)
  const ids: string[] = []
  for (let pair = firstPair.get({}); pair; pair = nextPair.get(pair)) {
    const row = newest.get(pair)
    if (row) ids.push(row.id)
  }
  return ids
}

const failureStatements = perHandle((db) => {
  const failed = () => db.k.selectFrom('job_log').where('status', '=', sql.lit('failed'))
  const pairs = () =>
    db.dialect.withIndex(failed().select(['plugin', 'command']).orderBy('plugin').orderBy('command').limit(1), 'job_log', 'job_log_failed_plugin_command_idx')
  return {
    firstPair: db.prepare(() => pairs()),
    nextPair: db.prepare((p: Param<{plugin: string; command: string}>) =>
      db.dialect.withIndex(
        failed()
          .select(['plugin', 'command'])
          .where(sql`(plugin, command)`, '>', sql`(${p('plugin')}, ${p('command')})`)
          .orderBy('plugin')
          .orderBy('command')
          .limit(1),
        'job_log',
        'job_log_failed_plugin_command_idx',
      ),
    ),
    newest: db.prepare((p: Param<{plugin: string; command: string}>) =>
      failed()
        .select('id')
        .where('plugin', '=', p('plugin'))
        .where('command', '=', p('command'))
        .orderBy('completed_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1),
    ),
  }
})

// The five tables differ in columns: a candidate condition is applied to a select or a delete of its table.
// biome-ignore lint/suspicious/noExplicitAny: a builder of any of the five tables; Kysely has no type for "some table's where"
type Conditions = <Q extends {where: (...args: any[]) => any}>(q: Q) => Q

/**
 * Which rows of a table are old enough to prune, and the time index they are read in (oldest first).
 * `keep` ids are never candidates. Each batch chooses its rows inside its own delete, under the lock.
 */
function candidates(db: Db, table: PruneTable, cutoff: string, keep: string[]): {where: Conditions; order?: string} {
  const unfinished = db.k.selectFrom('job_queue').select('id').where('status', 'in', ['queued', 'running'])
  switch (table) {
    case 'job_log':
      return {
        where: (q) => {
          const old = q.where('completed_at', '<', cutoff)
          return keep.length ? old.where('id', 'not in', keep) : old
        },
        order: 'completed_at',
      }
    case 'job_queue':
      return {
        where: (q) =>
          q
            .where('status', 'in', [...TERMINAL_STATUSES])
            .where('completed_at', 'is not', null)
            .where('completed_at', '<', cutoff),
      }
    case 'job_transitions':
    case 'job_attempts':
      // History of a job still queued or running stays with it.
      return {where: (q) => q.where('created_at', '<', cutoff).where('job_id', 'not in', unfinished), order: 'created_at'}
    case 'circuit_breaker_transitions':
    case 'schedule_decisions':
    case 'dedupe_hits':
      return {where: (q) => q.where('created_at', '<', cutoff), order: 'created_at'}
    case 'engines':
      return {where: (q) => q.where('stopped_at', 'is not', null).where('stopped_at', '<', cutoff)}
  }
}

function countOld(db: Db, table: PruneTable, cutoff: string): number {
  const k = db.k
  // biome-ignore lint/suspicious/noExplicitAny: one count over five tables whose columns differ
  const base: SelectQueryBuilder<any, any, object> =
    table === 'job_log'
      ? k.selectFrom('job_log').where('completed_at', '<', cutoff)
      : table === 'job_queue'
        ? k
            .selectFrom('job_queue')
            .where('status', 'in', [...TERMINAL_STATUSES])
            .where('completed_at', '<', cutoff)
        : table === 'engines'
          ? k.selectFrom('engines').where('stopped_at', '<', cutoff)
          : // biome-ignore lint/suspicious/noExplicitAny: as above
            (k.selectFrom(table) as SelectQueryBuilder<any, any, object>).where('created_at', '<', cutoff)
  return Number(db.get(base.select((eb) => eb.fn.countAll<number>().as('n')))?.n ?? 0)
}

export async function prune(db: Db, opts: PruneOptions = {}): Promise<PruneResult> {
  const started = Date.now()
  const clock = opts.clock ?? systemClock
  const tables = opts.tables ?? PRUNE_TABLES
  const keepLastFailure = opts.keepLastFailure ?? true
  const target = opts.batchTargetMs ?? 25
  const yieldMs = opts.yieldMs ?? 25
  const results: PruneTableResult[] = []
  // For the duration: no automatic checkpoint inside each batch's COMMIT (two fsyncs that keep the next
  // batch waiting; the gap between batches checkpoints instead), and a page cache that holds a batch, so it is
  // written to the WAL once, at its commit.
  // On PostgreSQL a batch locks only the rows it deletes: no lock to hand over, no WAL file to copy back.
  const lite = asSqlite(db)
  const restore = lite ? tuneForBatches(lite) : () => {}
  try {
    for (const table of tables) {
      const retention = opts.retention?.[table] ?? DEFAULT_RETENTION_MS[table]
      const cutoff = formatTs(new Date(clock().getTime() - Math.max(retention, 0)))
      const result: PruneTableResult = {table, cutoff, retention_ms: retention, deleted: 0, kept: 0, batches: 0}
      results.push(result)
      if (retention <= 0) continue
      const keep = table === 'job_log' && keepLastFailure ? findLastFailureIds(db) : []
      // Counting every old row is a long read (the WAL cannot restart under it): only for a progress display.
      const total = opts.onProgress || opts.dryRun ? countOld(db, table, cutoff) : 0
      const {where, order} = candidates(db, table, cutoff, keep)
      // biome-ignore lint/suspicious/noExplicitAny: deletes over a table chosen at run time
      const k = db.k as Kysely<any>
      if (opts.dryRun) {
        const n = Number(db.get(where(k.selectFrom(table)).select((eb) => eb.fn.countAll<number>().as('n')))?.n ?? 0)
        result.deleted = n
        result.kept = total - n
        continue
      }
      // The oldest `size` candidates by the table's time index, then the delete by rowid (aliased: SQLite names a
      // bare rowid column after an INTEGER PRIMARY KEY). Choosing them outside the lock and passing the list
      // in cost more in all (a read per batch, then JSON) than the index walk costs inside it.
      const batch = (size: number) => {
        const q = where(k.selectFrom(table).select(sql<number>`${sql.raw(db.dialect.rowId)}`.as('r')))
        return k.deleteFrom(table).where(sql.ref(db.dialect.rowId), 'in', (order ? q.orderBy(order) : q).limit(size))
      }
      let size = opts.batchSize ?? 5000
      let sinceComplete = 0
      for (;;) {
        let took = 0
        const changes = db.txEager(() => {
          // Time the work inside the lock only (waiting for the lock is not ours to shorten).
          const t0 = performance.now()
          const n = Number(db.run(batch(size)).changes)
          took = performance.now() - t0
          return n
        }, 50)
        const committed = lite ? {at: performance.now(), version: dataVersion(lite)} : null
        result.deleted += changes
        result.batches++
        opts.onProgress?.({table, deleted: result.deleted, total})
        if (changes < size) break
        // Keep each write transaction short, whatever the row size and disk.
        if (took > target && size > 500) size = Math.max(500, Math.floor((size * target) / took))
        else if (took < target / 2 && size < 20_000) size = Math.min(20_000, Math.floor(size * 1.5))
        if (!lite || !committed) {
          await sleep(1)
          continue
        }
        await yieldToWriters(lite, committed, yieldMs)
        // Copy the batches into the database file. A writer that committed in the gap has started doing it
        // already (its automatic checkpoint, on its own core): then PASSIVE returns at once and the copy
        // overlaps our next batch. With nobody else writing, it is done here. The WAL only restarts from its
        // beginning when a transaction starts with every frame copied, so every ~200 ms of batches we wait
        // for that: waiting after every batch cost a third of the time, never waiting let the WAL grow.
        sinceComplete += took
        if (sinceComplete >= 200) {
          await checkpointComplete(lite)
          sinceComplete = 0
        } else checkpoint(lite, 'PASSIVE')
      }
      // What is still older than the cutoff was kept on purpose (a handful of rows: a short count).
      result.kept = countOld(db, table, cutoff)
    }
  } finally {
    restore()
  }
  if (!opts.dryRun && lite) checkpoint(lite, 'TRUNCATE')
  return {
    dry_run: Boolean(opts.dryRun),
    tables: results,
    total_deleted: results.reduce((n, r) => n + r.deleted, 0),
    duration_ms: Date.now() - started,
    wal_bytes_after: lite ? fileSize(`${db.path}-wal`) : 0,
  }
}
