import {BaseCommand} from '../../cli/base.js'
import {durationFlag, limitFlag} from '../../cli/flags.js'
import {renderTable, when} from '../../cli/render.js'
import {type SlowJob, findSlowestJobs} from '../../queries/logs.js'
import {formatDuration, tsAgo} from '../../schema/time.js'

export interface JobsSlowestResult {
  since_ms: number
  jobs: SlowJob[]
}

export default class JobsSlowest extends BaseCommand<typeof JobsSlowest> {
  static override summary = 'The slowest successful attempts from job_log'
  static override description = 'The reference query "Find the slowest successful jobs in the last 24 hours": duration = completed_at − started_at.'
  static override examples = ['<%= config.bin %> jobs slowest', '<%= config.bin %> jobs slowest --since 7d --limit 20 --json']

  static override flags = {
    since: durationFlag({description: 'completed within this long', default: 86_400_000}),
    limit: limitFlag(10),
  }

  async run(): Promise<JobsSlowestResult> {
    const db = this.openRead()
    const jobs = this.guard(db, () => findSlowestJobs(db, tsAgo(this.flags.since), this.flags.limit, this.flags.since))
    if (this.human()) {
      if (jobs.length === 0) this.log('No successful jobs in that window.')
      else
        this.log(
          renderTable(
            [
              {header: 'PLUGIN', get: (j: SlowJob) => j.plugin},
              {header: 'COMMAND', get: (j) => j.command},
              {header: 'DURATION', get: (j) => formatDuration(j.duration_ms), align: 'right'},
              {header: 'COMPLETED', get: (j) => when(j.completed_at)},
              {header: 'JOB', get: (j) => `${j.job_id ?? '-'} #${j.attempt}`},
            ],
            jobs,
          ),
        )
    }
    return {since_ms: this.flags.since, jobs}
  }
}
