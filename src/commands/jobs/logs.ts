import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {instantFlag, limitFlag, statusFlag} from '../../cli/flags.js'
import {colourStatus, firstLine, parseJsonOr, when} from '../../cli/render.js'
import {searchJobLogs} from '../../queries/logs.js'
import {formatTs} from '../../schema/time.js'
import type {JobLogRow} from '../../schema/types.js'

export interface JobsLogsResult {
  logs: JobLogRow[]
  /** More rows match than the limit returned. */
  truncated: boolean
}

export default class JobsLogs extends BaseCommand<typeof JobsLogs> {
  static summary = 'Search job_log (one row per attempt), newest first'
  static examples = [
    '<%= config.bin %> jobs logs --plugin weather_probe --status failed',
    '<%= config.bin %> jobs logs --query timeout --from 2026-11-27 --limit 20',
    '<%= config.bin %> jobs logs --job 0193a1b2-0000-7000-8000-000000000000 --include-result --json',
  ]

  static flags = {
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
  }

  async run(): Promise<JobsLogsResult> {
    const db = this.openRead()
    const f = this.flags
    const {rows, truncated} = this.guard(db, () =>
      searchJobLogs(db, {
        plugin: f.plugin,
        command: f.command,
        status: f.status,
        submittedBy: f['submitted-by'],
        jobId: f.job,
        from: f.from ? formatTs(f.from) : undefined,
        to: f.to ? formatTs(f.to) : undefined,
        query: f.query,
        limit: f.limit,
      }),
    )
    if (this.human()) {
      if (rows.length === 0) this.log('No log rows match.')
      for (const r of rows) {
        this.log(`${when(r.completed_at)}  ${colourStatus(r.status)}  ${r.plugin}:${r.command}  job=${r.job_id ?? '-'} attempt=${r.attempt} submitted_by=${r.submitted_by}`)
        if (r.last_error) this.log(`  last_error: ${firstLine(r.last_error, 200)}`)
        if (r.stderr) this.log(`  stderr: ${firstLine(r.stderr.trim().split('\n').slice(-1)[0], 200)}`)
        if (f['include-result'] && r.result) this.log(`  result: ${JSON.stringify(parseJsonOr(r.result, null))}`)
      }
      if (truncated) this.log(`(more rows match; showing the newest ${rows.length}: narrow with filters or raise --limit)`)
    }
    return {logs: rows, truncated}
  }
}
