import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {durationFlag, instantFlag, limitFlag, statusFlag} from '../../cli/flags.js'
import {colourStatus, firstLine, parseJsonOr, when} from '../../cli/render.js'
import {type LogSearch, searchJobLogs} from '../../queries/logs.js'
import {formatTs} from '../../schema/time.js'
import type {JobLogRow} from '../../schema/types.js'

export interface JobsLogsResult {
  logs: JobLogRow[]
  /** More rows match than the limit returned. */
  truncated: boolean
}

export default class JobsLogs extends BaseCommand<typeof JobsLogs> {
  static override summary = 'Search job_log (one row per attempt), newest first'
  static override examples = [
    '<%= config.bin %> jobs logs --plugin weather --status failed',
    '<%= config.bin %> jobs logs --query timeout --from 2026-11-27 --limit 20',
    '<%= config.bin %> jobs logs --job 0193a1b2-0000-7000-8000-000000000000 --include-result --json',
    '<%= config.bin %> jobs logs --follow --plugin weather            # like tail -f; Ctrl-C stops',
    '<%= config.bin %> jobs logs --follow --json | jq .status          # NDJSON, one row a line',
  ]

  static override flags = {
    plugin: Flags.string({description: 'only this plugin'}),
    command: Flags.string({description: 'only this command'}),
    status: statusFlag({description: 'only this status'}),
    'submitted-by': Flags.string({description: 'only jobs submitted by this (cli, route, hook, the service name)'}),
    job: Flags.string({description: 'only the attempts of this job id'}),
    from: instantFlag({description: 'completed at or after'}),
    to: instantFlag({description: 'completed at or before'}),
    query: Flags.string({description: 'text in last_error, stderr or result (case-insensitive)'}),
    limit: limitFlag(50, 1000),
    'include-result': Flags.boolean({description: 'show each result (human output)'}),
    follow: Flags.boolean({char: 'f', description: 'keep printing new rows as they land (NDJSON with --json) until Ctrl-C'}),
    'poll-interval': durationFlag({description: 'how often --follow looks for new rows', default: 250}),
  }

  async run(): Promise<JobsLogsResult> {
    const db = this.openRead()
    const f = this.flags
    const search = {
      plugin: f.plugin,
      command: f.command,
      status: f.status,
      submittedBy: f['submitted-by'],
      jobId: f.job,
      from: f.from ? formatTs(f.from) : undefined,
      to: f.to ? formatTs(f.to) : undefined,
      query: f.query,
      limit: f.limit,
    }
    const {rows, truncated} = this.guard(db, () => searchJobLogs(db, search))
    if (f.follow) {
      await this.follow(db, search, [...rows].reverse())
      // The rows went out as they landed (NDJSON under --json): nothing more to print.
      return undefined as unknown as JobsLogsResult
    }
    if (this.human()) {
      if (rows.length === 0) this.log('No log rows match.')
      for (const r of rows) this.printRow(r)
      if (truncated) this.log(`(more rows match; showing the newest ${rows.length}: narrow with filters or raise --limit)`)
    }
    return {logs: rows, truncated}
  }

  private printRow(r: JobLogRow): void {
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(r)}\n`)
      return
    }
    this.log(
      `${when(r.completed_at)}  ${colourStatus(r.status)}  ${r.plugin}:${r.command}  job=${r.job_id ?? '-'} attempt=${r.attempt} submitted_by=${r.submitted_by}`,
    )
    if (r.last_error) this.log(`  last_error: ${firstLine(r.last_error, 200)}`)
    if (r.stderr) this.log(`  stderr: ${firstLine(r.stderr.trim().split('\n').slice(-1)[0], 200)}`)
    if (this.flags['include-result'] && r.result) this.log(`  result: ${JSON.stringify(parseJsonOr(r.result, null))}`)
  }

  /** Print the newest rows oldest first, then every new row as it lands, until SIGINT or SIGTERM. */
  private async follow(db: ReturnType<BaseCommand<typeof JobsLogs>['openRead']>, search: LogSearch, initial: JobLogRow[]): Promise<void> {
    for (const r of initial) this.printRow(r)
    // Rows are committed in roughly, not exactly, completed_at order (workers finish concurrently): look a few
    // seconds back each time and skip the rows already printed.
    const LOOKBACK_MS = 5000
    const seen = new Map<string, number>(initial.map((r) => [r.id, Date.parse(`${r.completed_at.replace(' ', 'T')}Z`)]))
    const last = initial.at(-1)
    let newest = last ? Date.parse(`${last.completed_at.replace(' ', 'T')}Z`) : Date.now()
    let stop = false
    const onSignal = () => (stop = true)
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    while (!stop) {
      await new Promise((r) => setTimeout(r, this.flags['poll-interval']))
      if (stop) break
      const since = formatTs(new Date(newest - LOOKBACK_MS))
      const {rows} = this.guard(db, () => searchJobLogs(db, {...search, limit: 1000, after: {completedAt: since, id: ''}}))
      for (const r of rows) {
        if (seen.has(r.id)) continue
        const t = Date.parse(`${r.completed_at.replace(' ', 'T')}Z`)
        seen.set(r.id, t)
        newest = Math.max(newest, t)
        this.printRow(r)
      }
      for (const [id, t] of seen) if (t < newest - 2 * LOOKBACK_MS) seen.delete(id)
    }
  }
}
