import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {limitFlag} from '../../cli/flags.js'
import {colourStatus, tail, when} from '../../cli/render.js'
import {ERROR_STATUSES, type FailedAttempt, findLatestErrors} from '../../queries/logs.js'

export interface JobsErrorsResult {
  errors: FailedAttempt[]
}

export default class JobsErrors extends BaseCommand<typeof JobsErrors> {
  static override summary = 'The latest failed or timed-out attempts, with their error and the tail of stderr'
  static override description =
    'The reference query "Get the latest error for a specific plugin", widened to attempts that timed out. Every failed attempt has its own job_log row, retried ones too.'
  static override examples = [
    '<%= config.bin %> jobs errors --plugin weather',
    '<%= config.bin %> jobs errors --limit 5',
    '<%= config.bin %> jobs errors --plugin weather --json',
  ]

  static override flags = {
    plugin: Flags.string({description: 'only this plugin'}),
    status: Flags.option({
      options: ERROR_STATUSES,
      description: 'only failed or only timed-out attempts (default: both; failed alone is the reference query)',
    })(),
    limit: limitFlag(1),
    'stderr-lines': Flags.integer({description: 'lines of stderr to show', default: 10, min: 0}),
  }

  async run(): Promise<JobsErrorsResult> {
    const db = this.openRead()
    const errors = this.guard(db, () =>
      findLatestErrors(db, {plugin: this.flags.plugin, limit: this.flags.limit, statuses: this.flags.status ? [this.flags.status] : ERROR_STATUSES}),
    )
    if (this.human()) {
      if (errors.length === 0) this.log(this.flags.plugin ? `No failed or timed-out jobs for plugin ${this.flags.plugin}.` : 'No failed or timed-out jobs.')
      for (const e of errors) {
        this.log(`${colourStatus(e.status)}  ${e.plugin} ${e.command}  job ${e.job_id ?? '-'} attempt ${e.attempt}  ${when(e.completed_at)}`)
        this.log(`  error: ${e.last_error ?? '-'}`)
        const t = tail(e.stderr, this.flags['stderr-lines'])
        if (t)
          this.log(
            '  stderr:\n' +
              t
                .split('\n')
                .map((l) => `    ${l}`)
                .join('\n'),
          )
      }
    }
    return {errors}
  }
}
