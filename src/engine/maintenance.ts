import type {ServiceConfig} from '../config/types.js'
import {asSqlite} from '../schema/db.js'
import {setAutocheckpoint} from '../schema/sqlite.js'
import type {Clock} from '../schema/time.js'
import {errorMessage} from '../errors.js'
import {Checkpointer} from './checkpointer.js'
import type {Logger} from './log.js'
import type {Scheduler} from './scheduler.js'
import type {EngineStore} from './store.js'

export interface MaintenanceDeps {
  store: EngineStore
  scheduler: Scheduler
  service: ServiceConfig
  logger: Logger
  clock: Clock
  dbPath: string
}

/**
 * What the engine does besides running jobs: the tick (the scheduler, then retention) every
 * service.tick_interval, and the WAL checkpoints on their own thread. Never two ticks or two retention
 * passes at once; `stop` waits for the one under way.
 */
export class Maintenance {
  private tickTimer: NodeJS.Timeout | null = null
  private ticking = false
  private pruning = false
  private stopping = false
  private checkpointer: Checkpointer | null = null

  constructor(private readonly d: MaintenanceDeps) {}

  /** Checkpoint the WAL on a worker thread instead of inside the engine's commits. */
  startCheckpointer(): void {
    const lite = asSqlite(this.d.store.db)
    if (!lite) return // PostgreSQL checkpoints itself
    setAutocheckpoint(lite, 0)
    this.checkpointer = new Checkpointer(this.d.dbPath, {
      onError: (message) => {
        this.d.logger.warn('checkpoint thread failed; checkpointing in the engine again', {error: message})
        if (lite.sqlite.open) setAutocheckpoint(lite)
        this.checkpointer = null
      },
    })
  }

  /** The first tick now, then one every service.tick_interval. */
  async start(): Promise<void> {
    await this.tick()
    this.scheduleTick()
  }

  private scheduleTick(): void {
    if (this.stopping) return
    this.tickTimer = setTimeout(async () => {
      await this.tick()
      this.scheduleTick()
    }, this.d.service.tick_interval_ms)
  }

  /** One tick: the scheduler's decisions, then retention in the background. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopping) return
    this.ticking = true
    try {
      this.d.scheduler.tick()
    } catch (err) {
      this.d.logger.error('tick failed', {error: errorMessage(err)})
    } finally {
      this.ticking = false
    }
    void this.retention()
  }

  private async retention(): Promise<void> {
    if (this.pruning || this.stopping) return
    this.pruning = true
    try {
      const r = await this.d.store.retain(this.d.service, this.d.clock)
      if (r.total_deleted > 0) this.d.logger.info('retention', Object.fromEntries(r.tables.filter((t) => t.deleted).map((t) => [t.table, t.deleted])))
    } catch (err) {
      this.d.logger.error('retention failed', {error: errorMessage(err)})
    } finally {
      this.pruning = false
    }
  }

  /** No more ticks from now on (the engine is stopping: nothing new is scheduled while running jobs drain). */
  halt(): void {
    this.stopping = true
    if (this.tickTimer) clearTimeout(this.tickTimer)
  }

  /** Wait for the tick and the retention pass under way; stop the checkpoint thread. */
  async stop(): Promise<void> {
    this.halt()
    while (this.pruning || this.ticking) await new Promise((r) => setTimeout(r, 20))
    await this.checkpointer?.stop()
    this.checkpointer = null
  }
}
