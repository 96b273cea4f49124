import {createHash} from 'node:crypto'
import {existsSync, mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import {type Config, type SpawnHelperMode, redact} from '../config/load.js'
import {type PluginInstance, type PluginRegistry, commandTimeoutMs, entrypointProblem, hasCommand, pluginParallelism} from '../plugins/discover.js'
import {prune} from '../queries/maintenance.js'
import {
  type AttemptRecord,
  type EnqueueResult,
  type NewJobInput,
  claimNextJob,
  completeAttempt,
  enqueueJob,
  recordAttemptProcess,
  recoverRunningJobs,
  retryAttempt,
} from '../queries/queue.js'
import {insertConfigSnapshot} from '../queries/snapshots.js'
import {StateError, applyStateUpdates, readPluginState} from '../queries/state.js'
import {type Db, DEFAULT_WAL_AUTOCHECKPOINT, openDb, restrictPermissions, translateSqliteError} from '../schema/db.js'
import {assertInitialisable, assertSchemaCurrent, initSchema, schemaState} from '../schema/migrations.js'
import {type Clock, formatTs, systemClock} from '../schema/time.js'
import type {Job} from '../schema/types.js'
import {payloadDepthProblem} from '../lib/json.js'
import {processAlive, processStartTime} from '../lib/proc.js'
import {listRunningJobs} from '../queries/jobs.js'
import {EngineLock, realDbPath} from './lock.js'
import {RUN_MARKER, SPAWNER_MARKER, dbKey, killLeftovers} from './orphans.js'
import {Logger} from './log.js'
import {type PluginRequest, type RunResult, killGroup, pluginEnv, runPlugin} from './runner.js'
import {Checkpointer} from './checkpointer.js'
import {type SpawnPlan, Spawner, spawnPath} from './spawner.js'
import {errorMessage} from '../errors.js'

/**
 * The thin engine: the worker loop that claims queued jobs, runs their plugins under protocol v2 and writes
 * every outcome, plus the periodic tick (scheduler hooks and retention).
 */

export interface EngineHooks {
  /** Called once per tick (after start, then every service.tick_interval). */
  tick?: (engine: Engine) => void | Promise<void>
  /** Called inside the success transaction: route the response's events; throw to fail the job. */
  onSuccess?: (engine: Engine, job: Job, plugin: PluginInstance, result: RunResult) => void
  /** Called after a job reached a terminal status (outside any transaction). */
  onTerminal?: (engine: Engine, job: Job, status: string, result: RunResult | null, error: string | null) => void
  /** Extra context for the request (pipeline baggage). */
  contextFor?: (engine: Engine, job: Job) => Record<string, unknown>
  /** The event a handle job's plugin receives (the step's `with:` remaps). */
  prepareEvent?: (engine: Engine, job: Job, event: Record<string, unknown>, context: Record<string, unknown>) => Record<string, unknown>
  /** A reason to skip the job without running its plugin (a step whose `if` is false). */
  skipReason?: (engine: Engine, job: Job, context: Record<string, unknown>) => string | null
  /** Called inside the transaction that records a skipped job (re-route its event onward). */
  onSkipped?: (engine: Engine, job: Job) => void
}

export interface EngineOptions {
  config: Config
  registry: PluginRegistry
  dbPath: string
  version: string
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
  hooks?: EngineHooks
}

/** How often the loop looks for running rows whose engine and plugin are both gone. */
export const ORPHAN_CHECK_MS = 5000

interface Active {
  job: Job
  plugin: string
  pid: number | null
  done: Promise<void>
}

export class Engine {
  readonly config: Config
  readonly registry: PluginRegistry
  readonly logger: Logger
  readonly clock: Clock
  readonly version: string
  db!: Db
  snapshotId: string | null = null
  private lock: EngineLock | null = null
  /** The spawn helper that starts plugins, or null when the engine starts them itself. */
  private spawner: Spawner | null = null
  private readonly active = new Map<string, Active>()
  private stopping = false
  private wakeResolve: (() => void) | null = null
  private loopDone: Promise<void> | null = null
  private tickTimer: NodeJS.Timeout | null = null
  private pruning = false
  private ticking = false
  private readonly opts: EngineOptions
  readonly stats = {started: 0, finished: 0}

  constructor(opts: EngineOptions) {
    this.opts = opts
    this.config = opts.config
    this.registry = opts.registry
    this.logger = (opts.logger ?? new Logger()).redacting(opts.config.secrets)
    this.clock = opts.clock ?? systemClock
    this.version = opts.version
    this.spawnPlan = spawnPath(opts.spawnHelper ?? this.config.service.spawn_helper, this.config.service.max_workers)
  }

  /** Who starts plugins, decided before anything is locked or opened (a missing python3 is a config error). */
  private readonly spawnPlan: SpawnPlan

  now(): string {
    return this.handoverAt ?? formatTs(this.clock())
  }

  /** While an attempt hands its worker over, its completion and the next claim carry the same time. */
  private handoverAt: string | undefined

  /** Lock, open (creating a new database on first run), snapshot the config, recover orphans, start the loop. */
  async start(): Promise<void> {
    // First run: the database's directory may not exist yet (private, like the file).
    if (!existsSync(dirname(this.opts.dbPath))) mkdirSync(dirname(this.opts.dbPath), {recursive: true, mode: 0o700})
    // The real path: a second engine on the same file through a symlink finds this lock.
    const path = realDbPath(this.opts.dbPath)
    this.lock = EngineLock.acquire(path)
    this.runKey = dbKey(path)
    try {
      // We hold the lock: whatever a previous engine of this file left running (found by the marker in its
      // environment, not by a PID row that may never have been written) is killed before any job is requeued.
      const killed = killLeftovers(this.runKey)
      if (killed.length) this.logger.warn('killed processes a previous engine left running', {pids: killed.join(',')})
      this.db = openDb(path, {mode: 'create', check: assertInitialisable})
      if (schemaState(this.db).kind === 'empty') {
        initSchema(this.db)
        this.logger.info('created database', {path})
      }
      assertSchemaCurrent(this.db)
      this.snapshotId = this.writeSnapshot()
      // The WAL and SHM files exist once something is written: private like the database.
      restrictPermissions(path)
      // We hold the lock: every running row belongs to an engine that is gone. A plugin it left running is
      // killed first (its output has no reader any more), so the job never runs twice at once.
      for (const r of listRunningJobs(this.db)) {
        if (r.plugin_pid && processAlive(r.plugin_pid, r.plugin_started_at)) {
          killGroup(r.plugin_pid, 'SIGKILL')
          this.logger.warn('killed a plugin left running by a previous engine', {job: r.id, pid: r.plugin_pid})
        }
      }
      this.recover(() => true, 'recovered jobs left running by a previous engine')
    } catch (err) {
      this.db?.close()
      this.lock.release()
      throw translateSqliteError(err, path)
    }
    if (this.spawnPlan.kind) {
      // The helper gets no secrets of the engine's environment: only PATH and its marker.
      const env: Record<string, string> = {[SPAWNER_MARKER]: this.runKey}
      if (process.env.PATH) env.PATH = process.env.PATH
      this.spawner = new Spawner(this.spawnPlan.kind, {python: this.spawnPlan.python, env, onFallback: (why) => this.logger.warn(why)})
    }
    if (this.opts.checkpointThread !== false) this.startCheckpointer()
    this.logger.info('engine started', {db: path, pid: process.pid, plugins: this.registry.plugins.size, max_workers: this.config.service.max_workers, spawn: this.spawner ? `${this.spawner.kind}-helper` : 'engine', snapshot: this.snapshotId})
    this.loopDone = this.loop()
    await this.tick()
    this.scheduleTick()
  }

  private checkpointer: Checkpointer | null = null

  private startCheckpointer(): void {
    this.db.sqlite.pragma('wal_autocheckpoint = 0')
    this.checkpointer = new Checkpointer(this.opts.dbPath, {
      onError: (message) => {
        this.logger.warn('checkpoint thread failed; checkpointing in the engine again', {error: message})
        if (this.db.sqlite.open) this.db.sqlite.pragma(`wal_autocheckpoint = ${DEFAULT_WAL_AUTOCHECKPOINT}`)
        this.checkpointer = null
      },
    })
  }

  /** Requeue (or mark dead) running jobs the filter picks; fire the lifecycle hook for the dead ones. */
  private recover(filter: (job: Job) => boolean, message: string): void {
    const rec = recoverRunningJobs(this.db, this.now(), filter)
    if (rec.requeued.length || rec.dead.length) this.logger.warn(message, {requeued: rec.requeued.length, dead: rec.dead.length})
    for (const id of rec.dead) {
      const job = this.db.get(this.db.k.selectFrom('job_queue').selectAll().where('id', '=', id))
      if (job) this.opts.hooks?.onTerminal?.(this, job, 'dead', null, job.last_error)
    }
    if (rec.requeued.length) this.wake()
  }

  /**
   * Orphans found while running (periodic check): running rows that are not ours, whose engine and plugin
   * processes are both gone, are recovered now rather than after a timeout.
   */
  checkOrphans(): void {
    const orphans = new Set(
      listRunningJobs(this.db)
        .filter((r) => !this.active.has(r.id) && r.engine_pid !== process.pid && !processAlive(r.engine_pid) && !(r.plugin_pid && processAlive(r.plugin_pid, r.plugin_started_at)))
        .map((r) => r.id),
    )
    if (orphans.size) this.recover((job) => orphans.has(job.id), 'recovered orphaned running jobs')
  }

  private writeSnapshot(): string {
    const fingerprints: Record<string, string> = {}
    for (const [name, p] of this.registry.plugins) fingerprints[name] = p.manifest.fingerprint
    const configHash = createHash('sha256').update(JSON.stringify(this.config.sanitized)).digest('hex')
    return insertConfigSnapshot(this.db, {
      configHash,
      sourceHash: this.config.sourceHash,
      sourcePath: this.config.file,
      reason: 'startup',
      version: this.version,
      binaryPath: process.argv[1] ?? '',
      sanitizedConfig: this.config.sanitized,
      pluginFingerprints: fingerprints,
      now: this.now(),
    })
  }

  private scheduleTick(): void {
    if (this.stopping) return
    this.tickTimer = setTimeout(async () => {
      await this.tick()
      this.scheduleTick()
    }, this.config.service.tick_interval_ms)
  }

  /** One tick: scheduler hooks, then retention (never two at once). */
  async tick(): Promise<void> {
    if (this.ticking || this.stopping) return
    this.ticking = true
    try {
      await this.opts.hooks?.tick?.(this)
    } catch (err) {
      this.logger.error('tick failed', {error: errorMessage(err)})
    } finally {
      this.ticking = false
    }
    void this.retention()
  }

  private async retention(): Promise<void> {
    if (this.pruning || this.stopping) return
    this.pruning = true
    const s = this.config.service
    try {
      const r = await prune(this.db, {
        retention: {
          job_log: s.job_log_retention_ms,
          job_queue: s.job_queue_retention_ms,
          job_transitions: s.job_transitions_retention_ms,
          job_attempts: s.job_attempts_retention_ms,
          circuit_breaker_transitions: s.breaker_transitions_retention_ms,
        },
        clock: this.clock,
      })
      if (r.total_deleted > 0) this.logger.info('retention', Object.fromEntries(r.tables.filter((t) => t.deleted).map((t) => [t.table, t.deleted])))
    } catch (err) {
      this.logger.error('retention failed', {error: errorMessage(err)})
    } finally {
      this.pruning = false
    }
  }

  /** Wake the loop now (a job was enqueued by the engine itself, or a slot freed). */
  wake(): void {
    this.wakeResolve?.()
  }

  private waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeResolve = null
        resolve()
      }, ms)
      this.wakeResolve = () => {
        clearTimeout(t)
        this.wakeResolve = null
        resolve()
      }
    })
  }

  private async loop(): Promise<void> {
    const poll = this.opts.pollIntervalMs ?? 250
    let orphansCheckedAt = Date.now()
    while (!this.stopping) {
      try {
        if (this.unrecorded.size) this.recordUnrecorded()
        if (Date.now() - orphansCheckedAt >= ORPHAN_CHECK_MS) {
          orphansCheckedAt = Date.now()
          this.checkOrphans()
        }
        this.fill()
      } catch (err) {
        this.logger.error('claim failed', {error: errorMessage(translateSqliteError(err, this.opts.dbPath))})
      }
      await this.waitForWake(poll)
    }
  }

  private atCap(finishing?: string): Set<string> {
    const counts = new Map<string, number>()
    for (const a of this.active.values()) if (a.job.id !== finishing) counts.set(a.plugin, (counts.get(a.plugin) ?? 0) + 1)
    const capped = new Set<string>()
    for (const [plugin, n] of counts) {
      const inst = this.registry.plugins.get(plugin)
      const cap = inst ? pluginParallelism(inst, this.config.service.max_workers) : 1
      if (n >= cap) capped.add(plugin)
    }
    return capped
  }

  /** Claim jobs while there are free workers. */
  private fill(): void {
    while (!this.stopping && this.active.size < this.config.service.max_workers) {
      const job = claimNextJob(this.db, {now: this.now(), excludePlugins: this.atCap(), snapshotId: this.snapshotId, enginePid: process.pid})
      if (!job) return
      this.launch(job)
    }
  }

  private launch(job: Job): void {
    const entry: Active = {job, plugin: job.plugin, pid: null, done: Promise.resolve()}
    this.active.set(job.id, entry)
    this.stats.started++
    entry.done = this.execute(job, entry)
      .catch((err) => this.abandon(job, err))
      .finally(() => {
        this.active.delete(job.id)
        this.stats.finished++
        this.wake()
      })
  }

  /** Attempts that failed after their claim and whose failure could not be written yet (a full disk). */
  private readonly unrecorded = new Map<string, {job: Job; error: string; warned?: boolean}>()

  /**
   * Anything that fails after a claim ends that attempt: failed, retryable, with a job_log row naming the
   * cause. When even that cannot be written (the disk is full), the loop tries again until it can, so the
   * job never stays running inside a live engine.
   */
  private abandon(job: Job, err: unknown): void {
    const cause = errorMessage(translateSqliteError(err, this.opts.dbPath))
    const error = `engine error after the claim: ${cause}`
    this.logger.error('job handling failed', {job: job.id, error})
    this.unrecorded.set(job.id, {job, error})
    this.recordUnrecorded()
  }

  private recordUnrecorded(): void {
    for (const [id, entry] of this.unrecorded) {
      const {job, error} = entry
      try {
        const rec = this.attemptRecord('failed', null, error)
        this.db.tx(() => {
          this.flushPid(job.id)
          if (job.attempt < job.max_attempts) retryAttempt(this.db, job, rec, this.retryAt(job))
          else completeAttempt(this.db, job, rec)
        })
        this.unrecorded.delete(id)
        this.logger.info('job end', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt, status: job.attempt < job.max_attempts ? 'retry' : 'failed', error})
      } catch (e) {
        // Once per attempt: the loop tries again every poll until the write goes through.
        if (!entry.warned) this.logger.warn('could not record a failed attempt yet; trying again', {job: id, error: errorMessage(translateSqliteError(e, this.opts.dbPath))})
        entry.warned = true
        return
      }
    }
  }

  /** When a failed attempt runs again: base·2^(n−1) plus up to base/4 of jitter. */
  private retryAt(job: Job): string {
    const base = this.registry.plugins.get(job.plugin)?.config.retry.backoff_base_ms ?? 30_000
    const delay = base * 2 ** (job.attempt - 1) + Math.floor(Math.random() * (base / 4 + 1))
    return formatTs(new Date(this.clock().getTime() + delay))
  }

  /**
   * Write an attempt's outcome and claim the job that takes its worker.
   * - The outcome changes plugin state: one transaction for both, so the next request (which carries the
   *   plugin's state) sees what this attempt wrote.
   * - Otherwise the next job is claimed and started first and the outcome written while it runs: nothing
   *   the outcome writes reaches the next request, and the plugin no longer waits for the job_log, the
   *   transition and the routing writes (about a third of the engine's time between two jobs).
   */
  private finishAttempt(job: Job, write: () => boolean, changesState = false): boolean {
    const claimNext = (): Job | null =>
      !this.stopping && this.active.size - 1 < this.config.service.max_workers
        ? claimNextJob(this.db, {now: this.now(), excludePlugins: this.atCap(job.id), snapshotId: this.snapshotId, enginePid: process.pid})
        : null
    // One instant for both: the next job never shows as started before this one completed.
    const outer = this.handoverAt
    this.handoverAt = this.now()
    try {
      let next: Job | null = null
      if (!changesState) {
        next = claimNext()
        if (next) this.launch(next)
        next = null
      }
      const wrote = this.db.tx(() => {
        this.flushPid(job.id)
        const ok = write()
        if (changesState) next = claimNext()
        return ok
      })
      if (next) this.launch(next)
      return wrote
    } finally {
      this.handoverAt = outer
    }
  }

  /** Plugin PIDs are written shortly after spawn (or with the outcome, whichever comes first). */
  private readonly pendingPids = new Map<string, {attempt: number; pid: number; startedAt: string | null}>()
  private pidTimer: NodeJS.Timeout | null = null

  private notePid(job: Job, pid: number): void {
    this.pendingPids.set(job.id, {attempt: job.attempt, pid, startedAt: processStartTime(pid)})
    this.pidTimer ??= setTimeout(() => {
      this.pidTimer = null
      try {
        this.db.tx(() => {
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

  /** Enqueue from inside the engine (scheduler, router, hooks); the loop wakes at once. */
  enqueue(input: Omit<NewJobInput, 'now' | 'configSnapshotId'> & {now?: string}): EnqueueResult {
    const now = input.now ?? this.now()
    const r = enqueueJob(this.db, {
      ...input,
      now,
      configSnapshotId: this.snapshotId,
    })
    if (r.status === 'enqueued') this.wake()
    return r
  }

  private buildRequest(job: Job, plugin: PluginInstance, timeoutMs: number): PluginRequest {
    let payload: unknown
    if (job.payload != null && job.payload !== '') {
      try {
        payload = JSON.parse(job.payload)
      } catch {
        throw new DirectFailure(`job payload is not valid JSON`)
      }
    }
    const deep = payloadDepthProblem(payload)
    if (deep) throw new DirectFailure(`${deep}; such a job is refused at enqueue, this one was written by another process`)
    const isObj = payload !== null && typeof payload === 'object' && !Array.isArray(payload)
    const context: Record<string, unknown> = {ductile_plugin: plugin.name, ...(this.opts.hooks?.contextFor?.(this, job) ?? {})}
    let state: Record<string, unknown>
    try {
      state = readPluginState(this.db, plugin.name)
    } catch (e) {
      throw new DirectFailure(errorMessage(e))
    }
    const req: PluginRequest = {
      protocol: 2,
      job_id: job.id,
      command: job.command,
      config: plugin.config.config,
      state,
      context,
      deadline_at: new Date(Date.now() + timeoutMs).toISOString(),
      instance: plugin.name,
    }
    if (isObj && Object.keys(payload as object).length > 0) req.payload = payload
    if (job.command === 'handle' && isObj) {
      const env = payload as Record<string, unknown>
      if (typeof env.type !== 'string') throw new DirectFailure('handle job payload is not an event envelope (it needs a "type")')
      const event = {...env, payload: mergeContext(env.payload, context)}
      req.event = this.opts.hooks?.prepareEvent ? this.opts.hooks.prepareEvent(this, job, event, context) : event
    }
    return req
  }

  private async execute(job: Job, entry: Active): Promise<void> {
    const plugin = this.registry.plugins.get(job.plugin)
    const started = performance.now()
    if (!plugin) return this.failDirectly(job, `plugin ${job.plugin} is not installed: no manifest under plugin_roots names it`, started)
    if (!hasCommand(plugin, job.command)) {
      return this.failDirectly(job, `plugin ${job.plugin} has no command ${job.command} (manifest commands: ${plugin.manifest.commands.map((c) => c.name).join(', ')})`, started)
    }
    const timeoutMs = commandTimeoutMs(plugin, job.command)
    let request: PluginRequest
    try {
      request = this.buildRequest(job, plugin, timeoutMs)
    } catch (e) {
      if (e instanceof DirectFailure) return this.failDirectly(job, e.message, started)
      throw e
    }
    const skip = this.opts.hooks?.skipReason?.(this, job, request.context)
    if (skip) return this.skip(job, skip, started)
    // Checked again at every spawn: the file may have been swapped since discovery.
    const unsafe = entrypointProblem(plugin.manifest.entrypoint, plugin.manifest.realDir, this.config.service.allow_symlinks)
    if (unsafe) return this.failDirectly(job, `refused to run plugin ${job.plugin}: ${unsafe}; fix the plugin directory (\`ductile plugins list\` checks it)`, started)
    this.logger.info('job start', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt})
    const result = await runPlugin({
      entrypoint: plugin.manifest.entrypoint,
      request,
      env: this.pluginEnvironment(),
      timeoutMs,
      graceMs: this.opts.killGraceMs,
      cwd: plugin.manifest.dir,
      spawner: this.spawner ?? undefined,
      onSpawn: (pid) => {
        entry.pid = pid
        this.notePid(job, pid)
      },
    })
    for (const l of result.response?.logs ?? []) {
      if (l && typeof l.message === 'string') this.logger.log(['debug', 'info', 'warn', 'error'].includes(String(l.level)) ? (l.level as 'info') : 'info', `plugin: ${l.message}`, {plugin: job.plugin, job: job.id})
    }
    await this.record(job, plugin, result, started)
  }

  /** What is stored of an attempt; no secret of the config reaches job_log or job_queue. */
  private attemptRecord(status: string, result: RunResult | null, lastError: string | null): AttemptRecord {
    const secrets = this.config.secrets
    return {status, result: redact(result?.stdout ?? null, secrets), lastError: redact(lastError, secrets), stderr: redact(result?.stderr ?? null, secrets), now: this.now()}
  }

  private envCache: Record<string, string> | null = null
  /** The key of this database in the marker every plugin process carries (see orphans.ts). */
  private runKey = ''
  /** The allowlisted environment plugins get, built once (reading process.env is not free), with the marker. */
  private pluginEnvironment(): Record<string, string> {
    this.envCache ??= {...pluginEnv({...this.config.env, ...process.env}, this.config.service.plugin_env_passthrough), [RUN_MARKER]: this.runKey}
    return this.envCache
  }

  private async record(job: Job, plugin: PluginInstance, result: RunResult, started: number): Promise<void> {
    let status: string
    let error: string | null = null
    if (result.kind === 'ok') {
      try {
        const updates = result.response!.state_updates
        const changesState = Boolean(updates && Object.keys(updates).length > 0)
        const wrote = this.finishAttempt(
          job,
          () => {
            if (changesState) {
              const rules = plugin.manifest.fact_outputs.filter((r) => r.command === job.command)
              applyStateUpdates(this.db, {plugin: plugin.name, command: job.command, jobId: job.id, updates: updates!, rules, now: this.now()})
            }
            this.opts.hooks?.onSuccess?.(this, job, plugin, result)
            return completeAttempt(this.db, job, this.attemptRecord('succeeded', result, null))
          },
          changesState,
        )
        status = wrote ? 'succeeded' : 'superseded'
      } catch (err) {
        // Persisting state or routing failed: the job fails without retry (original §2.3); nothing of the
        // success transaction was kept.
        error = err instanceof StateError || err instanceof JobFailure ? err.message : `could not record the result: ${errorMessage(translateSqliteError(err, this.opts.dbPath))}`
        status = 'failed'
        this.finishAttempt(job, () => completeAttempt(this.db, job, this.attemptRecord('failed', result, error)))
      }
    } else {
      error = result.error ?? 'plugin failed'
      const failStatus = result.kind === 'timeout' ? 'timed_out' : 'failed'
      if (result.retryable && job.attempt < job.max_attempts) {
        const next = this.retryAt(job)
        const wrote = this.finishAttempt(job, () => retryAttempt(this.db, job, this.attemptRecord(failStatus, result, error), next))
        status = wrote ? 'retry' : 'superseded'
        this.logger.info('job end', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt, status: failStatus, retry_at: next, duration_ms: Math.round(performance.now() - started), error})
        return
      }
      const wrote = this.finishAttempt(job, () => completeAttempt(this.db, job, this.attemptRecord(failStatus, result, error)))
      status = wrote ? failStatus : 'superseded'
    }
    this.logger.info('job end', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt, status, duration_ms: Math.round(performance.now() - started), error})
    if (status !== 'superseded') this.opts.hooks?.onTerminal?.(this, job, status, result, error)
  }

  /** A job whose step condition is false ends skipped without running its plugin (original §8.1). */
  private skip(job: Job, reason: string, started: number): void {
    const result = JSON.stringify({status: 'skipped', reason})
    const wrote = this.finishAttempt(job, () => {
      const ok = completeAttempt(this.db, job, {status: 'skipped', result, lastError: reason, stderr: null, now: this.now()})
      if (ok) this.opts.hooks?.onSkipped?.(this, job)
      return ok
    })
    this.logger.info('job end', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt, status: wrote ? 'skipped' : 'superseded', duration_ms: Math.round(performance.now() - started), reason})
  }

  /** Failures that bypass retry (original §2.3): unknown plugin or command, bad payload, unreadable state. */
  private failDirectly(job: Job, error: string, started: number): void {
    const wrote = this.finishAttempt(job, () => completeAttempt(this.db, job, this.attemptRecord('failed', null, error)))
    this.logger.info('job end', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt, status: wrote ? 'failed' : 'superseded', duration_ms: Math.round(performance.now() - started), error})
  }

  /** Terminate the plugin of a running job (its row was already moved on, e.g. cancelled by the scheduler). */
  killJob(jobId: string): void {
    const a = this.active.get(jobId)
    if (a?.pid) killGroup(a.pid, 'SIGTERM')
  }

  /** The spawn helper's PID while it runs (null before the first job, or without a helper). */
  spawnHelperPid(): number | null {
    return this.spawner?.pid ?? null
  }

  /** The running jobs and their plugin PIDs. */
  running(): {job: Job; pid: number | null}[] {
    return [...this.active.values()].map((a) => ({job: a.job, pid: a.pid}))
  }

  /** Stop claiming, let running plugins finish (each is bounded by its timeout), release everything. */
  async stop(opts: {force?: boolean} = {}): Promise<void> {
    if (!this.stopping) this.logger.info('engine stopping', {running: this.active.size})
    this.stopping = true
    if (this.tickTimer) clearTimeout(this.tickTimer)
    this.wake()
    if (opts.force) for (const a of this.active.values()) if (a.pid) killGroup(a.pid, 'SIGTERM')
    await this.loopDone
    await Promise.all([...this.active.values()].map((a) => a.done))
    if (this.unrecorded.size) this.recordUnrecorded()
    if (this.unrecorded.size) this.logger.error('could not record these failed attempts; the next engine start recovers them', {jobs: [...this.unrecorded.keys()].join(',')})
    while (this.pruning || this.ticking) await new Promise((r) => setTimeout(r, 20))
    if (this.pidTimer) clearTimeout(this.pidTimer)
    this.spawner?.close()
    await this.checkpointer?.stop()
    this.checkpointer = null
    try {
      this.db.sqlite.pragma('optimize')
    } catch {
      // best effort
    }
    this.db.close()
    this.lock?.release()
    this.logger.info('engine stopped', {jobs: this.stats.finished})
  }
}

class DirectFailure extends Error {}

/** Thrown by a success hook to fail the job with this message (no retry), e.g. an event routing error. */
export class JobFailure extends Error {}

/** Context keys are merged into event.payload without overwriting (original §3.2). */
function mergeContext(payload: unknown, context: Record<string, unknown>): unknown {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return payload
  const out = {...(payload as Record<string, unknown>)}
  for (const [k, v] of Object.entries(context)) if (!(k in out)) out[k] = v
  return out
}
