import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {DuctileError} from '../../errors.js'
import {wakeEngine} from '../../lib/lock.js'
import {retryJob} from '../../queries/queue.js'
import {formatTs} from '../../schema/time.js'

export interface JobsRetryResult {
  job_id: string
  retry_of: string
  plugin: string
  command: string
}

export default class JobsRetry extends BaseCommand<typeof JobsRetry> {
  static override summary = 'Run a finished job again: a new job with the same plugin, command and payload'
  static override description = 'The new job has parent_job_id = the old job and submitted_by cli. Jobs still queued or running are refused.'
  static override examples = [
    '<%= config.bin %> jobs retry 0193a1b2-0000-7000-8000-000000000000',
    '<%= config.bin %> jobs retry 0193a1b2-0000-7000-8000-000000000000 --json',
  ]

  static override args = {id: Args.string({description: 'job id', required: true})}

  async run(): Promise<JobsRetryResult> {
    const db = this.openWrite()
    const r = this.guard(db, () => retryJob(db, this.args.id, formatTs(new Date()), 'cli'))
    if (!r.ok) {
      if (r.status === null)
        throw new DuctileError('not_found', `no job ${this.args.id} in job_queue`, {hint: 'terminal jobs are pruned from the queue after 24 hours'})
      throw new DuctileError('conflict', r.reason ?? `job ${this.args.id} is ${r.status}; only finished jobs can be retried`)
    }
    const old = r.old
    wakeEngine(this.dbPath())
    if (this.human()) this.log(r.job.id)
    return {job_id: r.job.id, retry_of: old.id, plugin: old.plugin, command: old.command}
  }
}
