import {EventEmitter} from 'node:events'
import {existsSync, mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import type {Config, SpawnHelperMode} from '../config/types.js'
import {type Pipeline, compilePipelines} from '../plugins/pipelines.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {asSqlite, restrictPermissions, translateSqliteError} from '../schema/db.js'
import {declareEngineDead, listLiveEngines, runningJobsOfEngine, runningJobsWithoutLiveEngine} from '../queries/engines.js'
import {displayTarget, isPgUrl} from '../schema/pg-url.js'
import {hostname} from 'node:os'
import {type Clock, formatTs, systemClock} from '../schema/time.js'
import type {Job} from '../schema/types.js'
import {pidNamespace, processAlive} from '../lib/proc.js'
import {errorMessage} from '../errors.js'
import {PipelineDispatch} from './dispatch.js'
import {type EngineEventMap, emitEngineEvent, emitJobEnd} from './events.js'
import {EngineLock, WAKE_SIGNAL, realDbPath} from '../lib/lock.js'
import {Logger} from './log.js'
import {Maintenance} from './maintenance.js'
import {RUN_MARKER, SPAWNER_MARKER, dbKey, killLeftovers} from './orphans.js'
import {killGroup, pluginEnv} from './runner.js'
import {Scheduler} from './scheduler.js'
import {type SpawnPlan, Spawner, spawnPath} from './spawner.js'
import {EngineStore} from './store.js'
import {WorkerLoop} from './worker.js'

/**
 * The engine's lifecycle. `start` takes the lock, kills what a previous engine left running, opens the store,
 * recovers that engine's running jobs, and builds the parts: the pipeline dispatch and the scheduler (over
 * the open database), the worker loop, and maintenance. `stop` drains them in order and releases everything.
 * What happens to jobs is told through `events` (typed: see EngineEventMap).
 */

export interface EngineOptions {
  config: Config
  registry: PluginRegistry
  dbPath: string
  version: string
  /** Compiled from the config when absent. */
  pipelines?: Pipeline[]
  logger?: Logger
  clock?: Clock
  /** How often to look for jobs enqueued by other processes (default 250 ms). */
  pollIntervalMs?: number
  /** Grace between SIGTERM and SIGKILL for timed-out plugins (default 5 s). */
  killGraceMs?: number
  /** Who starts plugin processes; overrides service.spawn_helper (see spawnPath). */
  spawnHelper?: SpawnHelperMode
  /** Checkpoint the WAL on a worker thread instead of inside the engine's commits (default true). */
  checkpointThread?: boolean
  /**
   * Told when this engine learns that the others declared it dead (its heartbeat was older than the lease:
   * its jobs were recovered elsewhere). The engine has already killed its plugins and is stopping; the
   * process should exit non-zero so its supervisor starts a fresh one.
   */
  onLost?: (why: string) => void
}

/** How often the engine looks for running rows whose engine and plugin are both gone. */
export const ORPHAN_CHECK_MS = 5000

/** Six heartbeats per lease (5 s for the default 30 s): a missed beat or two never costs an engine its jobs. */
export function heartbeatInterval(leaseMs: number): number {
  return Math.max(100, Math.floor(leaseMs / 6))
}

/** The marker of one engine's processes on a shared database (orphans.ts): its database and its engine id. */
function sharedRunKey(displayedUrl: string, engineId: string): string {
  return dbKey(`${displayedUrl}#${engineId}`)
}

interface Parts {
  store: EngineStore
  dispatch: PipelineDispatch
  scheduler: Scheduler
  worker: WorkerLoop
  maintenance: Maintenance
  /** SQLite: the one engine per file. PostgreSQL: none (many engines share the queue). */
  lock: EngineLock | null
  spawner: Spawner | null
  orphanTimer: NodeJS.Timeout
  heartbeatTimer: NodeJS.Timeout
  /** Wakes the worker when another process committed a job and sent WAKE_SIGNAL (lib/lock.ts wakeEngine). */
  onWakeSignal: () => void
}

export class Engine {
  readonly config: Config
  readonly registry: PluginRegistry
  readonly logger: Logger
  readonly clock: Clock
  readonly version: string
  readonly events = new EventEmitter<EngineEventMap>()
  private readonly opts: EngineOptions
  /** Who starts plugins, decided before anything is locked or opened (a missing python3 is a config error). */
  private readonly spawnPlan: SpawnPlan
  private parts: Parts | null = null
  private stopping = false
  private stopped: Promise<void> | null = null
  private workerStats = {started: 0, finished: 0}
  private startedAt = Date.now()

  constructor(opts: EngineOptions) {
    this.opts = opts
    this.config = opts.config
    this.registry = opts.registry
    this.logger = (opts.logger ?? new Logger()).redacting(opts.config.secrets)
    this.clock = opts.clock ?? systemClock
    this.version = opts.version
    this.spawnPlan = spawnPath(opts.spawnHelper ?? this.config.service.spawn_helper, this.config.service.max_workers)
  }

  /** The open database (after start). */
  get db() {
    return this.started().store.db
  }

  /**
   * What the HTTP listeners use (src/http): the database's path (they open their own connection), the config
   * and plugins, the config snapshot their jobs are enqueued under, the events, and a wake for the worker.
   */
  httpDeps() {
    const parts = this.started()
    return {
      // The listeners open a connection of their own: to a file by its real path, to PostgreSQL with the URL as
      // given (its password with it; db.path is the URL as messages show it, without).
      dbPath: isPgUrl(this.opts.dbPath) ? this.opts.dbPath : parts.store.db.path,
      registry: this.registry,
      config: this.config,
      snapshotId: parts.store.snapshotId,
      version: this.version,
      startedAt: this.startedAt,
      wake: () => parts.worker.wake(),
      events: this.events,
      logger: this.logger,
    }
  }

  /** Jobs started and finished by this engine (they stay readable after stop). */
  get stats(): {started: number; finished: number} {
    return this.workerStats
  }

  private started(): Parts {
    if (!this.parts) throw new Error('the engine has not started')
    return this.parts
  }

  /** Lock, open (creating a new database on first run), snapshot the config, recover orphans, start the parts. */
  async start(): Promise<void> {
    if (isPgUrl(this.opts.dbPath)) return this.startShared(this.opts.dbPath)
    // First run: the database's directory may not exist yet (private, like the file).
    if (!existsSync(dirname(this.opts.dbPath))) mkdirSync(dirname(this.opts.dbPath), {recursive: true, mode: 0o700})
    // The real path: a second engine on the same file through a symlink finds this lock.
    const path = realDbPath(this.opts.dbPath)
    const lock = EngineLock.acquire(path)
    const runKey = dbKey(path)
    let store: EngineStore
    try {
      // We hold the lock: whatever a previous engine of this file left running (found by the marker in its
      // environment, not by a PID row that may never have been written) is killed before any job is requeued.
      const killed = killLeftovers(runKey)
      if (killed.length) this.logger.warn('killed processes a previous engine left running', {pids: killed.join(',')})
      store = EngineStore.open(path, {config: this.config, registry: this.registry, version: this.version, now: formatTs(this.clock()), logger: this.logger})
    } catch (err) {
      lock.release()
      throw translateSqliteError(err, path)
    }
    await this.launch(store, lock, runKey, () => {
      // The WAL and SHM files exist once something is written: private like the database.
      restrictPermissions(path)
      // We hold the lock: every running row belongs to an engine that is gone. A plugin it left running is
      // killed first (its output has no reader any more), so the job never runs twice at once.
      for (const r of store.running()) {
        if (r.plugin_pid && processAlive(r.plugin_pid, r.plugin_started_at)) {
          killGroup(r.plugin_pid, 'SIGKILL')
          this.logger.warn('killed a plugin left running by a previous engine', {job: r.id, pid: r.plugin_pid})
        }
      }
      this.recover(() => true, 'recovered jobs left running by a previous engine')
      // The engines that ran here before are gone (we hold the lock): their rows say so.
      const now = formatTs(this.clock())
      for (const e of listLiveEngines(store.db)) {
        if (e.id !== store.engineId) declareEngineDead(store.db, e.id, e.heartbeat_at, now, `not running: engine ${store.engineId} took the lock`)
      }
    })
  }

  /**
   * On a shared (PostgreSQL) database: no lock, any number of engines. This one recovers only the jobs of
   * engines found dead (heartbeat older than service.engine_lease, or a PID gone on this host), now and at
   * every heartbeat; a live engine's jobs are never taken.
   */
  private async startShared(url: string): Promise<void> {
    let store: EngineStore
    try {
      store = EngineStore.open(url, {config: this.config, registry: this.registry, version: this.version, now: formatTs(this.clock()), logger: this.logger})
    } catch (err) {
      throw translateSqliteError(err, displayTarget(url))
    }
    await this.launch(store, null, sharedRunKey(store.db.path, store.engineId), () => this.recoverDeadEngines())
  }

  /** Build the parts over an open store, run `recoverFirst`, then start them (undone if anything fails). */
  private async launch(store: EngineStore, lock: EngineLock | null, runKey: string, recoverFirst: () => void): Promise<void> {
    const parts = this.build(store, lock, runKey, store.db.path)
    this.parts = parts
    try {
      recoverFirst()
    } catch (err) {
      parts.spawner?.close()
      clearInterval(parts.orphanTimer)
      clearInterval(parts.heartbeatTimer)
      store.close('failed to start')
      lock?.release()
      this.parts = null
      throw translateSqliteError(err, store.db.path)
    }
    if (this.opts.checkpointThread !== false && asSqlite(store.db)) parts.maintenance.startCheckpointer()
    store.onNotify = () => parts.worker.wake()
    this.logger.info('engine started', {
      db: store.db.path,
      engine: store.engineId,
      pid: process.pid,
      plugins: this.registry.plugins.size,
      max_workers: this.config.service.max_workers,
      spawn: parts.spawner ? `${parts.spawner.kind}-helper` : 'engine',
      snapshot: store.snapshotId,
    })
    process.on(WAKE_SIGNAL, parts.onWakeSignal)
    this.startedAt = Date.now()
    parts.worker.start()
    await parts.maintenance.start()
  }

  /** The parts over an open store; nothing here touches the database or starts a process. */
  private build(store: EngineStore, lock: EngineLock | null, runKey: string, path: string): Parts {
    const {config, registry, logger, clock} = this
    const service = config.service
    let spawner: Spawner | null = null
    if (this.spawnPlan.kind) {
      // The helper gets no secrets of the engine's environment: only PATH and its marker.
      const env: Record<string, string> = {[SPAWNER_MARKER]: runKey}
      if (process.env.PATH) env.PATH = process.env.PATH
      spawner = new Spawner(this.spawnPlan.kind, {python: this.spawnPlan.python, env, onFallback: (why) => logger.warn(why)})
    }
    const pipelines = this.opts.pipelines ?? compilePipelines(config, registry).pipelines
    const dispatch = new PipelineDispatch({db: store.db, pipelines, registry, service, clock, snapshotId: store.snapshotId, secrets: config.secrets, logger})
    // The allowlisted environment plugins get, built once (reading process.env is not free), with the marker.
    const env = {...pluginEnv({...config.env, ...process.env}, service.plugin_env_passthrough), [RUN_MARKER]: runKey}
    const worker = new WorkerLoop({
      store,
      dispatch,
      registry,
      service,
      logger,
      clock,
      events: this.events,
      pluginEnv: env,
      spawner,
      dbPath: path,
      pollIntervalMs: this.opts.pollIntervalMs ?? 250,
      killGraceMs: this.opts.killGraceMs,
    })
    const scheduler = new Scheduler({
      db: store.db,
      config,
      registry,
      clock,
      logger,
      enqueue: (input) => {
        const r = store.enqueue({...input, now: worker.now()})
        if (r.status === 'enqueued') worker.wake()
        return r
      },
      killJob: (id) => worker.killJob(id),
      onBreakerChange: (c) => emitEngineEvent(this.events, logger, 'breaker:change', c),
    })
    this.workerStats = worker.stats
    const maintenance = new Maintenance({store, scheduler, service, logger, clock, dbPath: path})
    // Lifecycle hooks start pipelines when a notify_on_complete plugin's job ends.
    this.events.on('job:end', (end) => {
      if (dispatch.hook(end, registry.plugins.get(end.job.plugin))) worker.wake()
    })
    const orphanTimer = setInterval(() => this.checkOrphans(), ORPHAN_CHECK_MS)
    orphanTimer.unref()
    const heartbeatTimer = setInterval(() => this.heartbeat(), heartbeatInterval(service.engine_lease_ms))
    heartbeatTimer.unref()
    return {store, dispatch, scheduler, worker, maintenance, lock, spawner, orphanTimer, heartbeatTimer, onWakeSignal: () => worker.wake()}
  }

  /** Requeue (or mark dead) running jobs the filter picks; the dead ones end with a `job:end` event. */
  private recover(filter: (job: Job) => boolean, message: string, why?: string): void {
    const {store} = this.started()
    const rec = store.recover(formatTs(this.clock()), filter, why)
    this.announce(rec, message)
  }

  private announce(rec: {requeued: string[]; dead: string[]}, message: string, fields: Record<string, string> = {}): void {
    const {store, worker} = this.started()
    if (rec.requeued.length || rec.dead.length) this.logger.warn(message, {...fields, requeued: rec.requeued.length, dead: rec.dead.length})
    for (const id of rec.dead) {
      const job = store.job(id)
      if (job) emitJobEnd(this.events, {job, status: 'dead', ran: true, error: job.last_error}, this.logger)
    }
    if (rec.requeued.length) worker.wake()
  }

  /**
   * Orphans found while running: running rows that are not ours, whose engine and plugin processes are both
   * gone, are recovered now rather than after a timeout.
   */
  checkOrphans(): void {
    if (this.stopping || !this.parts) return
    const {store, worker} = this.parts
    // On a shared database a running row's engine_pid may be another host's: engines are judged by heartbeat.
    if (!asSqlite(store.db)) return
    try {
      const orphans = new Set(
        store
          .running()
          .filter(
            (r) =>
              !worker.isActive(r.id) &&
              r.engine_pid !== process.pid &&
              !processAlive(r.engine_pid) &&
              !(r.plugin_pid && processAlive(r.plugin_pid, r.plugin_started_at)),
          )
          .map((r) => r.id),
      )
      if (orphans.size) this.recover((job) => orphans.has(job.id), 'recovered orphaned running jobs')
    } catch (err) {
      this.logger.error('orphan check failed', {error: errorMessage(translateSqliteError(err, this.opts.dbPath))})
    }
  }

  /**
   * The heartbeat, then the dead engines' recovery (shared databases). An engine that finds itself declared
   * dead stops at once, killing its plugins: their jobs already run elsewhere.
   */
  heartbeat(): void {
    if (this.stopping || !this.parts) return
    const {store} = this.parts
    let alive: boolean
    try {
      alive = store.heartbeat(formatTs(this.clock()))
    } catch (err) {
      this.logger.warn('heartbeat failed; trying again', {error: errorMessage(translateSqliteError(err, store.db.path))})
      return
    }
    if (!alive) {
      const why = `another engine declared this engine (${store.engineId}) dead: its heartbeat was older than the lease, and its jobs were recovered`
      this.logger.error('engine lost its lease; stopping and killing its plugins', {engine: store.engineId})
      // SIGKILL, not a grace period: their jobs may already run on another engine.
      this.parts.worker.terminate('SIGKILL')
      void this.stop({force: true})
      this.opts.onLost?.(why)
      return
    }
    if (!asSqlite(store.db)) {
      try {
        this.recoverDeadEngines()
      } catch (err) {
        this.logger.error('dead engine check failed', {error: errorMessage(translateSqliteError(err, store.db.path))})
      }
    }
  }

  /**
   * Engines registered as running whose heartbeat is older than the lease (or, on this host, whose process is
   * gone): each is declared dead once (by whichever live engine gets there first), its plugins on this host
   * killed, and its running jobs recovered with the attempt semantics of crash recovery.
   */
  private recoverDeadEngines(): void {
    const {store} = this.started()
    const lease = this.config.service.engine_lease_ms
    const nowMs = this.clock().getTime()
    const cutoff = formatTs(new Date(nowMs - lease))
    const host = hostname()
    const ns = pidNamespace()
    for (const e of listLiveEngines(store.db)) {
      if (e.id === store.engineId) continue
      const expired = e.heartbeat_at < cutoff
      // Its PID means something only in this PID namespace of this host (containers may share a host name).
      const gone = e.host === host && ns !== null && e.pid_namespace === ns && !processAlive(e.pid)
      if (!expired && !gone) continue
      const why = expired
        ? `engine ${e.id} (${e.host} pid ${e.pid}) was silent for longer than the lease (${lease} ms); recovered by engine ${store.engineId}`
        : `engine ${e.id} (pid ${e.pid}) is gone from ${host}; recovered by engine ${store.engineId}`
      // On this host, what it left running dies before its jobs are requeued: a job never runs twice at once.
      if (e.host === host && e.pid_namespace === ns) killLeftovers(sharedRunKey(store.db.path, e.id))
      const now = formatTs(this.clock())
      const rec = store.tx(() => {
        if (!declareEngineDead(store.db, e.id, e.heartbeat_at, now, why)) return null
        const ids = runningJobsOfEngine(store.db, e.id)
        return store.recover(now, (job) => ids.has(job.id), why)
      })
      if (rec) this.announce(rec, 'recovered the jobs of a dead engine', {engine: e.id, host: e.host})
    }
    // Running rows no live engine answers for (a crashed engine's before engines registered, a copy, a hand edit).
    const now = formatTs(this.clock())
    const orphans = runningJobsWithoutLiveEngine(store.db)
    if (orphans.size) {
      const why = `no live engine had claimed this attempt; recovered by engine ${store.engineId}`
      this.announce(
        store.recover(now, (job) => orphans.has(job.id), why),
        'recovered running jobs that no live engine answers for',
      )
    }
  }

  /** Run one tick now (the scheduler, then retention). */
  tick(): Promise<void> {
    return this.started().maintenance.tick()
  }

  /** The spawn helper's PID while it runs (null before the first job, or without a helper). */
  spawnHelperPid(): number | null {
    return this.parts?.spawner?.pid ?? null
  }

  /** The running jobs and their plugin PIDs. */
  running(): {job: Job; pid: number | null}[] {
    return this.parts?.worker.running() ?? []
  }

  /**
   * Stop claiming, let running plugins finish (each is bounded by its timeout), release everything. With
   * `force` (a second signal) the running plugins are terminated; a stop under way then ends sooner.
   */
  stop(opts: {force?: boolean} = {}): Promise<void> {
    const parts = this.parts
    if (!parts) return this.stopped ?? Promise.resolve()
    if (opts.force) parts.worker.terminate()
    this.stopped ??= this.shutdown(parts)
    return this.stopped
  }

  private async shutdown(parts: Parts): Promise<void> {
    this.logger.info('engine stopping', {running: parts.worker.runningCount})
    this.stopping = true
    clearInterval(parts.orphanTimer)
    clearInterval(parts.heartbeatTimer)
    process.off(WAKE_SIGNAL, parts.onWakeSignal)
    parts.maintenance.halt()
    await parts.worker.drain()
    await parts.maintenance.stop()
    parts.spawner?.close()
    parts.store.close()
    parts.lock?.release()
    this.parts = null
    this.logger.info('engine stopped', {jobs: parts.worker.stats.finished})
  }
}
