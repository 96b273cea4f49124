import {Flags} from '@oclif/core'
import {resolve} from 'node:path'
import {Gauge, Histogram, Registry} from 'prom-client'

import {BaseCommand} from '../cli/base.js'
import {assertTextfileTarget, writeAtomically} from '../lib/files.js'
import {durationFlag} from '../cli/flags.js'
import {listBreakers} from '../queries/breakers.js'
import {countJobsByStatus} from '../queries/jobs.js'
import {completionsSince, durationsSince, overdueSchedules} from '../queries/metrics.js'
import {storeSize} from '../schema/open.js'
import {formatTs, parseTs} from '../schema/time.js'

export interface MetricsResult {
  /** The exposition text (Prometheus text format 0.0.4). */
  text: string
  textfile: string | null
}

const BREAKER_STATES = ['closed', 'half_open', 'open']
export const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

export default class Metrics extends BaseCommand<typeof Metrics> {
  static override summary = 'Metrics in the Prometheus text format (stdout, or a node_exporter textfile)'
  static override description =
    `Jobs by status; job_log completions by plugin and status and a duration histogram per plugin over --window; breaker state per plugin and command; schedule lag of overdue schedules; database and WAL size and free pages. --textfile writes atomically (a temp file, then rename) for node_exporter's textfile collector: the name must end in .prom, and an existing target must be a regular file that is not a database (a symlink, FIFO, device or database is refused, exit 2).`
  static override examples = [
    '<%= config.bin %> metrics',
    '<%= config.bin %> metrics --window 15m',
    '# crontab: refresh the textfile every minute\n* * * * * ductile metrics --db /var/lib/ductile/ductile.db --textfile /var/lib/node_exporter/textfile/ductile.prom',
  ]

  static override flags = {
    window: durationFlag({description: 'completions and durations over this long', default: 300_000}),
    textfile: Flags.string({description: 'write to this file atomically instead of stdout'}),
  }

  async run(): Promise<MetricsResult> {
    const textfile = this.flags.textfile ? resolve(this.flags.textfile) : null
    if (textfile) assertTextfileTarget(textfile)
    const db = this.openRead()
    const now = new Date()
    const since = formatTs(new Date(now.getTime() - this.flags.window))
    const reg = new Registry()
    const windowLabel = `${Math.round(this.flags.window / 1000)}s`
    const data = this.guard(db, () =>
      db.read(() => ({
        counts: countJobsByStatus(db),
        completions: completionsSince(db, since),
        durations: durationsSince(db, since),
        breakers: listBreakers(db, {all: true}),
        overdue: overdueSchedules(db, formatTs(now)),
        stats: storeSize(db),
      })),
    )
    const jobs = new Gauge({name: 'ductile_jobs', help: 'Jobs in job_queue by status', labelNames: ['status'], registers: [reg]})
    for (const c of data.counts) jobs.set({status: c.status}, c.count)
    const completions = new Gauge({
      name: 'ductile_job_completions',
      help: 'job_log rows (attempts) completed within the window, by plugin and status',
      labelNames: ['plugin', 'status', 'window'],
      registers: [reg],
    })
    for (const c of data.completions) completions.set({plugin: c.plugin, status: c.status, window: windowLabel}, c.n)
    const failures = new Gauge({
      name: 'ductile_job_failures',
      help: 'Failed or timed-out attempts within the window, by plugin',
      labelNames: ['plugin', 'window'],
      registers: [reg],
    })
    const failed = new Map<string, number>()
    for (const c of data.completions) if (c.status === 'failed' || c.status === 'timed_out') failed.set(c.plugin, (failed.get(c.plugin) ?? 0) + c.n)
    for (const [plugin, n] of failed) failures.set({plugin, window: windowLabel}, n)
    const hist = new Histogram({
      name: 'ductile_job_duration_seconds',
      help: 'Attempt durations within the window (completed_at - started_at), by plugin',
      labelNames: ['plugin'],
      buckets: DURATION_BUCKETS,
      registers: [reg],
    })
    for (const d of data.durations) if (d.duration_ms !== null) hist.observe({plugin: d.plugin}, d.duration_ms / 1000)
    const breaker = new Gauge({
      name: 'ductile_breaker_state',
      help: 'Circuit breaker state per plugin and command (1 for the current state)',
      labelNames: ['plugin', 'command', 'state'],
      registers: [reg],
    })
    const failuresG = new Gauge({
      name: 'ductile_breaker_failures',
      help: 'Consecutive failures counted by the breaker',
      labelNames: ['plugin', 'command'],
      registers: [reg],
    })
    for (const b of data.breakers) {
      for (const s of BREAKER_STATES) breaker.set({plugin: b.plugin, command: b.command, state: s}, b.state === s ? 1 : 0)
      failuresG.set({plugin: b.plugin, command: b.command}, b.failure_count)
    }
    const lag = new Gauge({
      name: 'ductile_schedule_lag_seconds',
      help: 'now - next_run_at for active schedules that are overdue',
      labelNames: ['plugin', 'schedule'],
      registers: [reg],
    })
    for (const s of data.overdue)
      lag.set({plugin: s.plugin, schedule: s.schedule_id}, Math.max(0, (now.getTime() - (parseTs(s.next_run_at)?.getTime() ?? now.getTime())) / 1000))
    new Gauge({name: 'ductile_db_size_bytes', help: 'Database file size', registers: [reg]}).set(data.stats.fileBytes)
    new Gauge({name: 'ductile_wal_size_bytes', help: 'WAL file size', registers: [reg]}).set(data.stats.walBytes)
    new Gauge({name: 'ductile_freelist_pages', help: 'Free pages in the database file', registers: [reg]}).set(data.stats.freelistCount)
    new Gauge({name: 'ductile_db_pages', help: 'Pages in the database file', registers: [reg]}).set(data.stats.pageCount)
    const text = await reg.metrics()
    // node_exporter (another user) reads it: world-readable, as the collector requires; metrics hold no payloads.
    if (textfile) writeAtomically(textfile, text, 0o644)
    else if (this.human()) process.stdout.write(text)
    return {text, textfile}
  }
}
