import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {durationFlag, limitFlag, statusFlag} from '../../cli/flags.js'
import {colourStatus, firstLine, renderTable, when} from '../../cli/render.js'
import {listJobs} from '../../queries/jobs.js'
import {tsAgo} from '../../schema/time.js'
import type {Job} from '../../schema/types.js'

export interface JobsListResult {
  jobs: Job[]
}

export default class JobsList extends BaseCommand<typeof JobsList> {
  static override summary = 'List queue rows, newest first'
  static override examples = [
    '<%= config.bin %> jobs list',
    '<%= config.bin %> jobs list --status failed --since 24h',
    '<%= config.bin %> jobs list --plugin weather --command poll --limit 5 --json',
  ]

  static override flags = {
    status: statusFlag({description: 'only this status'}),
    plugin: Flags.string({description: 'only this plugin'}),
    command: Flags.string({description: 'only this command'}),
    since: durationFlag({description: 'only jobs created within this long'}),
    limit: limitFlag(50),
  }

  async run(): Promise<JobsListResult> {
    const db = this.openRead()
    const f = this.flags
    const jobs = this.guard(db, () =>
      listJobs(db, {status: f.status, plugin: f.plugin, command: f.command, since: f.since === undefined ? undefined : tsAgo(f.since), limit: f.limit}),
    )
    if (this.human()) {
      if (jobs.length === 0) this.log('No jobs match.')
      else
        this.log(
          renderTable(
            [
              {header: 'ID', get: (j: Job) => j.id},
              {header: 'PLUGIN', get: (j) => j.plugin},
              {header: 'COMMAND', get: (j) => j.command},
              {header: 'STATUS', get: (j) => colourStatus(j.status)},
              {header: 'ATTEMPT', get: (j) => `${j.attempt}/${j.max_attempts}`, align: 'right'},
              {header: 'CREATED', get: (j) => when(j.created_at)},
              {header: 'LAST ERROR', get: (j) => firstLine(j.last_error, 50)},
            ],
            jobs,
          ),
        )
    }
    return {jobs}
  }
}
