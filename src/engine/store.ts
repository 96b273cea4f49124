import {createHash} from 'node:crypto'

import type {Config} from '../config/types.js'
import {redact} from '../config/secrets.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {type RunningJob, listRunningJobs} from '../queries/jobs.js'
import {type PruneResult, prune} from '../queries/maintenance.js'
import {
  type EnqueueResult,
  type NewJobInput,
  type RecoveryResult,
  claimNextJob,
  completeAttempt,
  enqueueJob,
  findQueueJob,
  nextRetryAt,
  recordAttemptProcess,
  JOBS_CHANNEL,
  recoverRunningJobs,
  retryAttempt,
} from '../queries/queue.js'
import {insertConfigSnapshot} from '../queries/snapshots.js'
import {type StateWrite, applyStateUpdates, readPluginState} from '../queries/state.js'
import {type Db, asSqlite, translateSqliteError} from '../schema/db.js'
import {openStore} from '../schema/open.js'
import {dataVersion, optimize} from '../schema/sqlite.js'
import {uuidv7} from '../schema/ids.js'
import {beatHeartbeat, markEngineStopped, registerEngine} from '../queries/engines.js'
import {hostname} from 'node:os'
import {assertInitialisable, assertSchemaCurrent, initSchema, schemaState} from '../schema/migrations.js'
import {type Clock, formatTs} from '../schema/time.js'
import type {Job} from '../schema/types.js'
import type {Logger} from './log.js'
import type {AttemptStatus, Failure} from './outcome.js'
import {pidNamespace, processStartTime} from '../lib/proc.js'
import {errorMessage} from '../errors.js'

/** How long the engine's transactions spin for the write lock before they sleep in SQLite's busy handler. */
export const LOCK_SPIN_MS = 3

/** What the store needs to know about an attempt's end: the plugin's output (redacted here) and the error. */
export interface AttemptOutput {
  stdout: string | null
  stderr: string | null
}

/**
 * The engine's database writes, in one place: opening (and creating) the database, the config snapshot,
 * claims, plugin PIDs, attempt outcomes (late ones too), plugin state, crash recovery, enqueues and
 * retention. The worker loop decides; the store writes. No secret of the config reaches a row through it.
 * The scheduler and the router, given the store's database, write through their own query modules.
 */
export class EngineStore {
  readonly db: Db
  readonly snapshotId: string
  private readonly secrets: string[]
  /** Plugin PIDs are written shortly after spawn (or with the outcome, whichever comes first). */
  private readonly pendingPids = new Map<string, {attempt: number; pid: number; startedAt: string | null}>()
  private pidTimer: NodeJS.Timeout | null = null
  /** Attempt ends that could not be written yet (a full disk), by job id: written again until they are. */
  private readonly lateEnds = new Map<string, {job: Job; end: EndAs; warned: boolean}>()
  private version: number | null = null
  /** This engine's row in the engines table. */
  readonly engineId = uuidv7()
  /** Plugins whose parallelism holds across engines (PostgreSQL's claim reads it), with their limit. */
  private readonly globalCaps: Record<string, number>
  /** PostgreSQL: a NOTIFY arrived (another connection enqueued) since othersCommitted last looked. */
  private notified = true
  private lastLook = 0
  /** Called when another connection's NOTIFY arrives (PostgreSQL): the worker wakes at once. */
  onNotify: (() => void) | null = null

  private constructor(
    db: Db,
    snapshotId: string,
    secrets: string[],
    private readonly logger: Logger,
    registry: PluginRegistry,
  ) {
    this.db = db
    this.snapshotId = snapshotId
    this.secrets = secrets
    this.globalCaps = globalCaps(registry)
  }

  /**
   * Open the database (a SQLite file at its real path, created on first run; or a PostgreSQL URL), check its
   * schema, record a config snapshot and register this engine.
   */
  static open(target: string, o: {config: Config; registry: PluginRegistry; version: string; now: string; logger: Logger}): EngineStore {
    let store: EngineStore | null = null
    const db = openStore(target, {
      mode: 'create',
      check: assertInitialisable,
      applicationName: `ductile engine ${hostname()}:${process.pid}`,
      onNotify: () => store?.heard(),
    })
    try {
      if (schemaState(db).kind === 'empty') {
        initSchema(db)
        o.logger.info('created database', {path: db.path})
      }
      assertSchemaCurrent(db)
      store = new EngineStore(db, writeSnapshot(db, o), o.config.secrets, o.logger, o.registry)
      registerEngine(db, {id: store.engineId, host: hostname(), pid: process.pid, pidNamespace: pidNamespace(), version: o.version, now: o.now})
      if (db.kind === 'postgres') db.listen(JOBS_CHANNEL)
      return store
    } catch (err) {
      db.close()
      throw err
    }
  }

  private heard(): void {
    this.notified = true
    this.onNotify?.()
  }

  /** The heartbeat; false when another engine has declared this one dead (its jobs were recovered). */
  heartbeat(now: string): boolean {
    return beatHeartbeat(this.db, this.engineId, now)
  }

  /**
   * The engine's write transactions ask for the lock in a short spin before SQLite's busy handler sleeps: other
   * writers (the HTTP listeners' group commits, a CLI, prune) hold it for a millisecond or two at a time,
   * and a 1–5 ms sleep behind each cost the engine a fifth of its throughput under an API load.
   */
  tx<T>(fn: () => T): T {
    return this.db.txEager(fn, LOCK_SPIN_MS)
  }

  running(): RunningJob[] {
    return listRunningJobs(this.db)
  }

  job(id: string): Job | undefined {
    return findQueueJob(this.db, id)
  }

  /** The oldest runnable job of a plugin not in `excludePlugins`, moved to running by this engine. */
  claim(now: string, excludePlugins: Set<string>): Job | null {
    return this.tx(() =>
      claimNextJob(this.db, {now, excludePlugins, snapshotId: this.snapshotId, enginePid: process.pid, engineId: this.engineId, globalCaps: this.globalCaps}),
    )
  }

  /** Whether another connection (a CLI, a script, `sqlite3`) committed since the last call (true the first time). */
  othersCommitted(): boolean {
    const lite = asSqlite(this.db)
    if (!lite) {
      // PostgreSQL: a NOTIFY says so at once; a look every second covers what sends none (another engine's
      // finished job that frees a plugin's global parallelism, a psql session).
      const now = performance.now()
      const look = this.notified || now - this.lastLook >= 1000
      if (look) this.lastLook = now
      this.notified = false
      return look
    }
    const v = dataVersion(lite)
    const changed = v !== this.version
    this.version = v
    return changed
  }

  /** When the next retry among queued jobs becomes runnable, or null when none waits for a time. */
  nextRetryAt(now: string): string | null {
    return nextRetryAt(this.db, now)
  }

  /** Requeue (or mark dead) the running jobs the filter picks. */
  recover(now: string, filter: (job: Job) => boolean, why?: string): RecoveryResult {
    return recoverRunningJobs(this.db, now, filter, why)
  }

  enqueue(input: Omit<NewJobInput, 'configSnapshotId'>): EnqueueResult {
    return enqueueJob(this.db, {...input, configSnapshotId: this.snapshotId})
  }

  readState(plugin: string): Record<string, unknown> {
    return readPluginState(this.db, plugin)
  }

  applyState(w: StateWrite): void {
    applyStateUpdates(this.db, w)
  }

  /** A plugin's PID, written within 50 ms in one batch, or with its attempt's outcome if that comes first. */
  notePid(job: Job, pid: number): void {
    this.pendingPids.set(job.id, {attempt: job.attempt, pid, startedAt: processStartTime(pid)})
    this.pidTimer ??= setTimeout(() => {
      this.pidTimer = null
      try {
        this.tx(() => {
          for (const id of [...this.pendingPids.keys()]) this.flushPid(id)
        })
      } catch (err) {
        this.logger.warn('could not record plugin pids', {error: errorMessage(err)})
      }
    }, 50)
  }

  private flushPid(jobId: string): void {
    const p = this.pendingPids.get(jobId)
    if (!p) return
    this.pendingPids.delete(jobId)
    recordAttemptProcess(this.db, jobId, p.attempt, p.pid, p.startedAt)
  }

  /**
   * Write an attempt's end as decided: its PID (if still pending), its job_log row and transition, and the
   * job's new status (or its requeue at `retryAt`). False when the row had moved on (cancelled meanwhile).
   * Joins the caller's transaction.
   */
  endAttempt(job: Job, outcome: EndAs, output: AttemptOutput | null, now: string): boolean {
    this.flushPid(job.id)
    const rec = {
      status: outcome.status,
      result: redact(output?.stdout ?? null, this.secrets),
      lastError: redact(outcome.error, this.secrets),
      stderr: redact(output?.stderr ?? null, this.secrets),
      now,
    }
    return outcome.retryAt ? retryAttempt(this.db, job, rec, outcome.retryAt) : completeAttempt(this.db, job, rec)
  }

  /**
   * An attempt that failed after its claim (an error of the engine, not the plugin) ends as decided, now if
   * the write goes through, else at the next `writeLateEnds`: the job never stays running inside a live
   * engine.
   */
  endLate(job: Job, end: EndAs, now: string): void {
    this.lateEnds.set(job.id, {job, end, warned: false})
    this.writeLateEnds(now)
  }

  /** Write the pending late ends, in order, until one fails (warned once per job). Returns the jobs still pending. */
  writeLateEnds(now: string): string[] {
    for (const [id, late] of this.lateEnds) {
      const {job, end} = late
      try {
        this.tx(() => this.endAttempt(job, end, null, now))
        this.lateEnds.delete(id)
        const status = end.retryAt ? 'retry' : 'failed'
        this.logger.info('job end', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt, status, error: end.error})
      } catch (err) {
        if (!late.warned)
          this.logger.warn('could not record a failed attempt yet; trying again', {job: id, error: errorMessage(translateSqliteError(err, this.db.path))})
        late.warned = true
        break
      }
    }
    return [...this.lateEnds.keys()]
  }

  /** Retention: delete what service.*_retention says is old (in batches that let the engine's commits through). */
  retain(s: Config['service'], clock: Clock): Promise<PruneResult> {
    return prune(this.db, {
      retention: {
        job_log: s.job_log_retention_ms,
        job_queue: s.job_queue_retention_ms,
        job_transitions: s.job_transitions_retention_ms,
        job_attempts: s.job_attempts_retention_ms,
        circuit_breaker_transitions: s.breaker_transitions_retention_ms,
        // The scheduler's decisions and dedupe hits keep as long as the job transitions they explain.
        schedule_decisions: s.job_transitions_retention_ms,
        dedupe_hits: s.job_transitions_retention_ms,
        // Stopped engines' rows keep as long too (running engines' never go).
        engines: s.job_transitions_retention_ms,
      },
      clock,
    })
  }

  close(reason = 'stopped'): void {
    if (this.pidTimer) clearTimeout(this.pidTimer)
    try {
      markEngineStopped(this.db, this.engineId, formatTs(new Date()), reason)
    } catch (err) {
      this.logger.warn('could not mark this engine stopped', {error: errorMessage(translateSqliteError(err, this.db.path))})
    }
    const lite = asSqlite(this.db)
    try {
      if (lite) optimize(lite)
    } catch {
      // best effort: statistics only
    }
    this.db.close()
  }
}

/**
 * Plugins whose parallelism holds across every engine of a shared database: an explicit `parallelism`, or a
 * plugin not concurrency_safe (1). A concurrency-safe plugin without one is limited by each engine's
 * max_workers only, so adding engines adds capacity.
 */
function globalCaps(registry: PluginRegistry): Record<string, number> {
  const caps: Record<string, number> = {}
  for (const [name, p] of registry.plugins) {
    if (p.config.parallelism !== undefined) caps[name] = p.config.parallelism
    else if (!p.manifest.concurrency_safe) caps[name] = 1
  }
  return caps
}

/** How an attempt is written: its status, the error it records, and when it runs again (a retry). */
export interface EndAs {
  status: AttemptStatus
  error: string | null
  retryAt?: string
}

/** The write for a decided outcome other than success. */
export function endAs(outcome: Failure, retryAt: (delayMs: number) => string): EndAs {
  return outcome.kind === 'retry'
    ? {status: outcome.attemptStatus, error: outcome.error, retryAt: retryAt(outcome.delayMs)}
    : {status: outcome.status, error: outcome.error}
}

function writeSnapshot(db: Db, o: {config: Config; registry: PluginRegistry; version: string; now: string}): string {
  const fingerprints: Record<string, string> = {}
  for (const [name, p] of o.registry.plugins) fingerprints[name] = p.manifest.fingerprint
  const configHash = createHash('sha256').update(JSON.stringify(o.config.sanitized)).digest('hex')
  return insertConfigSnapshot(db, {
    configHash,
    sourceHash: o.config.sourceHash,
    sourcePath: o.config.file,
    reason: 'startup',
    version: o.version,
    binaryPath: process.argv[1] ?? '',
    sanitizedConfig: o.config.sanitized,
    pluginFingerprints: fingerprints,
    now: o.now,
  })
}
