import type {EventEmitter} from 'node:events'

import type {ServiceConfig} from '../config/types.js'
import {DEFAULT_RETRY} from '../config/defaults.js'
import {type PluginInstance, type PluginRegistry, pluginParallelism} from '../plugins/discover.js'
import {translateSqliteError} from '../schema/db.js'
import {type Clock, formatTs, parseTs} from '../schema/time.js'
import type {Job} from '../schema/types.js'
import {DuctileError, errorMessage} from '../errors.js'
import type {PipelineDispatch} from './dispatch.js'
import {type EndStatus, type EngineEventMap, emitEngineEvent, emitJobEnd} from './events.js'
import type {Logger} from './log.js'
import {type Failure, decideAbandoned, decideOutcome} from './outcome.js'
import {PollGate} from './poll.js'
import {prepareAttempt} from './request.js'
import {type RunResult, killGroup, runPlugin} from './runner.js'
import type {Spawner} from './spawner.js'
import {type EndAs, type EngineStore, endAs} from './store.js'

export interface WorkerDeps {
  store: EngineStore
  dispatch: PipelineDispatch
  registry: PluginRegistry
  service: ServiceConfig
  logger: Logger
  clock: Clock
  events: EventEmitter<EngineEventMap>
  /** The allowlisted environment every plugin gets (with the engine's run marker). */
  pluginEnv: Record<string, string>
  spawner: Spawner | null
  dbPath: string
  pollIntervalMs: number
  killGraceMs?: number
}

interface Active {
  job: Job
  plugin: string
  pid: number | null
  done: Promise<void>
}

/**
 * The worker loop: claim queued jobs while workers are free (fill), run each attempt's plugin (launch), and
 * write its outcome while the next job is claimed (finish). Sleeps until woken or the poll interval passes;
 * a poll claims only when PollGate says it may find something.
 */
export class WorkerLoop {
  readonly stats = {started: 0, finished: 0}
  private readonly active = new Map<string, Active>()
  private stopping = false
  private wakeResolve: (() => void) | null = null
  /** A wake that came while the loop was not waiting: its next wait returns at once. */
  private woken = false
  private readonly gate = new PollGate()
  private loopDone: Promise<void> | null = null
  /** While an attempt hands its worker over, its completion and the next claim carry the same time. */
  private handoverAt: string | undefined

  constructor(private readonly d: WorkerDeps) {}

  now(): string {
    return this.handoverAt ?? formatTs(this.d.clock())
  }

  start(): void {
    this.loopDone = this.loop()
  }

  /** Wake the loop now (a job was enqueued by the engine itself, or a slot freed). */
  wake(): void {
    if (this.wakeResolve) this.wakeResolve()
    else this.woken = true
  }

  isActive(jobId: string): boolean {
    return this.active.has(jobId)
  }

  /** The running jobs and their plugin PIDs. */
  running(): {job: Job; pid: number | null}[] {
    return [...this.active.values()].map((a) => ({job: a.job, pid: a.pid}))
  }

  /** Terminate the plugin of a running job (its row was already moved on, e.g. cancelled by the scheduler). */
  killJob(jobId: string): void {
    const a = this.active.get(jobId)
    if (a?.pid) killGroup(a.pid, 'SIGTERM')
  }

  /** Terminate every running plugin (SIGTERM to its group, or `signal`); their attempts end as the plugins exit. */
  terminate(signal: NodeJS.Signals = 'SIGTERM'): void {
    for (const a of this.active.values()) if (a.pid) killGroup(a.pid, signal)
  }

  /** Stop claiming; wait for the running attempts (each bounded by its timeout) and record what is left. */
  async drain(): Promise<void> {
    this.stopping = true
    this.wake()
    await this.loopDone
    await Promise.all([...this.active.values()].map((a) => a.done))
    const left = this.d.store.writeLateEnds(this.now())
    if (left.length) this.d.logger.error('could not record these failed attempts; the next engine start recovers them', {jobs: left.join(',')})
  }

  get runningCount(): number {
    return this.active.size
  }

  /** True when woken, false when the poll interval passed. */
  private waitForWake(ms: number): Promise<boolean> {
    if (this.woken) {
      this.woken = false
      return Promise.resolve(true)
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeResolve = null
        resolve(false)
      }, ms)
      this.wakeResolve = () => {
        clearTimeout(t)
        this.wakeResolve = null
        resolve(true)
      }
    })
  }

  private async loop(): Promise<void> {
    let woken = true
    while (!this.stopping) {
      try {
        this.d.store.writeLateEnds(this.now())
        const at = this.d.clock().getTime()
        if (this.gate.shouldClaim({woken, othersCommitted: this.d.store.othersCommitted(), at})) {
          const empty = this.fill()
          this.gate.claimed({woken, empty, at, nextRetryAt: () => parseTs(this.d.store.nextRetryAt(formatTs(new Date(at))))?.getTime() ?? null})
        }
      } catch (err) {
        this.gate.failed()
        this.d.logger.error('claim failed', {error: errorMessage(translateSqliteError(err, this.d.dbPath))})
      }
      woken = await this.waitForWake(this.d.pollIntervalMs)
    }
  }

  /** Plugins at their parallelism limit (not counting the attempt that is handing its worker over). */
  private atCap(finishing?: string): Set<string> {
    const counts = new Map<string, number>()
    for (const a of this.active.values()) if (a.job.id !== finishing) counts.set(a.plugin, (counts.get(a.plugin) ?? 0) + 1)
    const capped = new Set<string>()
    for (const [plugin, n] of counts) {
      const inst = this.d.registry.plugins.get(plugin)
      const cap = inst ? pluginParallelism(inst, this.d.service.max_workers) : 1
      if (n >= cap) capped.add(plugin)
    }
    return capped
  }

  /** Claim jobs while there are free workers. True when a claim found nothing runnable. */
  private fill(): boolean {
    while (!this.stopping && this.active.size < this.d.service.max_workers) {
      const job = this.d.store.claim(this.now(), this.atCap())
      if (!job) return true
      this.launch(job)
    }
    return false
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

  /**
   * Anything that fails after a claim ends that attempt: failed, retryable, with a job_log row naming the
   * cause. When even that cannot be written (the disk is full), the loop tries again until it can, so the
   * job never stays running inside a live engine.
   */
  private abandon(job: Job, err: unknown): void {
    const error = `engine error after the claim: ${errorMessage(translateSqliteError(err, this.d.dbPath))}`
    this.d.logger.error('job handling failed', {job: job.id, error})
    this.d.store.endLate(job, this.endAs(decideAbandoned(job, error, this.backoffBase(job))), this.now())
  }

  private backoffBase(job: Job): number {
    return this.d.registry.plugins.get(job.plugin)?.config.retry.backoff_base_ms ?? DEFAULT_RETRY.backoff_base_ms
  }

  private endAs(outcome: Failure): EndAs {
    return endAs(outcome, (delayMs) => formatTs(new Date(this.d.clock().getTime() + delayMs)))
  }

  /**
   * Write an attempt's outcome and claim the job that takes its worker.
   * - The outcome changes plugin state (`state`): one transaction for both, so the next request (which
   *   carries the plugin's state) sees what this attempt wrote. The state goes last, after the claim: its
   *   writes are deferred to the COMMIT, so on PostgreSQL the rows they lock (the facts' seq, the plugin's
   *   state) are held for that one round trip while other engines work.
   * - Otherwise the next job is claimed and started first and the outcome written while it runs: nothing
   *   the outcome writes reaches the next request, and the plugin no longer waits for the job_log, the
   *   transition and the routing writes (about a third of the engine's time between two jobs).
   */
  private finishAttempt(job: Job, write: () => boolean, state?: () => void): boolean {
    const claimNext = (): Job | null =>
      !this.stopping && this.active.size - 1 < this.d.service.max_workers ? this.d.store.claim(this.now(), this.atCap(job.id)) : null
    // One instant for both: the next job never shows as started before this one completed.
    const outer = this.handoverAt
    this.handoverAt = this.now()
    try {
      let next: Job | null = null
      if (!state) {
        next = claimNext()
        if (next) this.launch(next)
        next = null
      }
      const wrote = this.d.store.tx(() => {
        const ok = write()
        if (state) {
          next = claimNext()
          state()
        }
        return ok
      })
      if (next) this.launch(next)
      return wrote
    } finally {
      this.handoverAt = outer
    }
  }

  private async execute(job: Job, entry: Active): Promise<void> {
    const started = performance.now()
    const prep = prepareAttempt(job, this.d)
    if (prep.kind === 'fail') return this.failDirectly(job, prep.error, started)
    if (prep.kind === 'skip') return this.skip(job, prep.reason, started)
    const {plugin, request, timeoutMs} = prep
    this.d.logger.info('job start', {plugin: job.plugin, command: job.command, job: job.id, attempt: job.attempt})
    emitEngineEvent(this.d.events, this.d.logger, 'job:start', {job})
    const result = await runPlugin({
      entrypoint: plugin.manifest.entrypoint,
      request,
      env: this.d.pluginEnv,
      timeoutMs,
      graceMs: this.d.killGraceMs,
      cwd: plugin.manifest.dir,
      spawner: this.d.spawner ?? undefined,
      onSpawn: (pid) => {
        entry.pid = pid
        this.d.store.notePid(job, pid)
      },
    })
    for (const l of result.response?.logs ?? []) {
      if (typeof l?.message !== 'string') continue
      const level = l.level === 'debug' || l.level === 'warn' || l.level === 'error' ? l.level : 'info'
      this.d.logger.log(level, `plugin: ${l.message}`, {plugin: job.plugin, job: job.id})
    }
    this.record(job, plugin, result, started)
  }

  private record(job: Job, plugin: PluginInstance, result: RunResult, started: number): void {
    const outcome = decideOutcome(job, result, plugin.config.retry.backoff_base_ms)
    const output = {stdout: result.stdout, stderr: result.stderr}
    let status: EndStatus | 'retry' | 'superseded'
    let error: string | null = null
    if (outcome.kind === 'succeed') {
      const {response} = outcome
      try {
        const updates = response.state_updates
        const changesState = Boolean(updates && Object.keys(updates).length > 0)
        const rules = plugin.manifest.fact_outputs.filter((r) => r.command === job.command)
        const wrote = this.finishAttempt(
          job,
          () => {
            if (this.d.dispatch.afterSuccess(job, response)) this.wake()
            return this.d.store.endAttempt(job, {status: 'succeeded', error: null}, output, this.now())
          },
          updates && changesState
            ? () => this.d.store.applyState({plugin: plugin.name, command: job.command, jobId: job.id, updates, rules, now: this.now()})
            : undefined,
        )
        status = wrote ? 'succeeded' : 'superseded'
      } catch (err) {
        // Persisting state or routing failed: the job fails without retry; nothing of the success
        // transaction was kept (a retry would repeat the plugin's side effects for the same bad output).
        error = failedSuccessMessage(err, this.d.dbPath)
        status = 'failed'
        const msg = error
        this.finishAttempt(job, () => this.d.store.endAttempt(job, {status: 'failed', error: msg}, output, this.now()))
      }
    } else {
      const end = this.endAs(outcome)
      error = end.error
      const wrote = this.finishAttempt(job, () => this.d.store.endAttempt(job, end, output, this.now()))
      if (end.retryAt) {
        this.logEnd(job, started, end.status, {retry_at: end.retryAt, error})
        if (wrote) emitEngineEvent(this.d.events, this.d.logger, 'job:retry', {job, error, retryAt: end.retryAt})
        return
      }
      status = wrote ? end.status : 'superseded'
    }
    this.logEnd(job, started, status, {error})
    if (status !== 'superseded') emitJobEnd(this.d.events, {job, status, ran: true, response: result.response, error}, this.d.logger)
  }

  /** A job whose step condition is false ends skipped without running its plugin. */
  private skip(job: Job, reason: string, started: number): void {
    const result = JSON.stringify({status: 'skipped', reason})
    const wrote = this.finishAttempt(job, () => {
      const ok = this.d.store.endAttempt(job, {status: 'skipped', error: reason}, {stdout: result, stderr: null}, this.now())
      if (ok && this.d.dispatch.afterSkip(job)) this.wake()
      return ok
    })
    this.logEnd(job, started, wrote ? 'skipped' : 'superseded', {reason})
    if (wrote) emitJobEnd(this.d.events, {job, status: 'skipped', ran: false, error: reason}, this.d.logger)
  }

  /** Failures that bypass retry: unknown plugin or command, a payload that cannot make a request, unreadable state. */
  private failDirectly(job: Job, error: string, started: number): void {
    const wrote = this.finishAttempt(job, () => this.d.store.endAttempt(job, {status: 'failed', error}, null, this.now()))
    this.logEnd(job, started, wrote ? 'failed' : 'superseded', {error})
    if (wrote) emitJobEnd(this.d.events, {job, status: 'failed', ran: false, error}, this.d.logger)
  }

  /** One `job end` line per attempt: who, how it ended, how long it took, and why. */
  private logEnd(job: Job, started: number, status: string, more: {retry_at?: string; error?: string | null; reason?: string}): void {
    const {retry_at, ...why} = more
    const duration_ms = Math.round(performance.now() - started)
    this.d.logger.info('job end', {
      plugin: job.plugin,
      command: job.command,
      job: job.id,
      attempt: job.attempt,
      status,
      ...(retry_at ? {retry_at} : {}),
      duration_ms,
      ...why,
    })
  }
}

/** Why a success could not be recorded: the plugin's own fault (bad state, events that cannot route) or ours. */
function failedSuccessMessage(err: unknown, dbPath: string): string {
  if (err instanceof DuctileError && err.code === 'state_invalid') return err.message
  if (err instanceof DuctileError && err.code === 'route_failed') return `event routing failed: ${err.message}`
  return `could not record the result: ${errorMessage(translateSqliteError(err, dbPath))}`
}
