import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {colourStatus, renderTable} from '../../cli/render.js'
import {type PluginStatusCount, type StatusCount, countJobsByPluginAndStatus, countJobsByStatus} from '../../queries/jobs.js'

export interface JobsStatusResult {
  total: number
  counts: StatusCount[]
  byPlugin?: PluginStatusCount[]
}

export default class JobsStatus extends BaseCommand<typeof JobsStatus> {
  static override summary = 'Count jobs in the queue by status'
  static override description = 'The reference query "Count jobs by status" over job_queue. Terminal rows are pruned after 24 hours by default.'
  static override examples = [
    '<%= config.bin %> jobs status',
    '<%= config.bin %> jobs status --plugin weather',
    '<%= config.bin %> jobs status --by-plugin --json',
  ]

  static override flags = {
    plugin: Flags.string({description: 'only this plugin'}),
    'by-plugin': Flags.boolean({description: 'one row per plugin and status'}),
  }

  async run(): Promise<JobsStatusResult> {
    const db = this.openRead()
    const result = this.guard(db, (): JobsStatusResult => {
      const counts = countJobsByStatus(db, {plugin: this.flags.plugin})
      const total = counts.reduce((n, c) => n + c.count, 0)
      return this.flags['by-plugin'] ? {total, counts, byPlugin: countJobsByPluginAndStatus(db, {plugin: this.flags.plugin})} : {total, counts}
    })
    if (this.human()) {
      if (result.total === 0) {
        this.log(this.flags.plugin ? `No jobs for plugin ${this.flags.plugin}.` : 'No jobs in the queue.')
      } else if (result.byPlugin) {
        this.log(
          renderTable(
            [
              {header: 'PLUGIN', get: (r: PluginStatusCount) => r.plugin},
              {header: 'STATUS', get: (r) => colourStatus(r.status)},
              {header: 'COUNT', get: (r) => r.count, align: 'right'},
            ],
            result.byPlugin,
          ),
        )
      } else {
        this.log(
          renderTable(
            [
              {header: 'STATUS', get: (r: {status: string; count: number}) => colourStatus(r.status)},
              {header: 'COUNT', get: (r) => r.count, align: 'right'},
            ],
            [...result.counts, {status: 'total', count: result.total}],
          ),
        )
      }
    }
    return result
  }
}
