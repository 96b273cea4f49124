import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {DuctileError} from '../../errors.js'
import {cancelQueuedJob} from '../../queries/queue.js'
import {formatTs} from '../../schema/time.js'

export interface JobsCancelResult {
  job_id: string
  status: 'dead'
  reason: string
}

export default class JobsCancel extends BaseCommand<typeof JobsCancel> {
  static override summary = 'Cancel a queued job: it becomes dead with reason "cancelled by operator"'
  static override description = 'Only queued jobs (including ones waiting for a retry) can be cancelled; a running job is left to finish or time out.'
  static override examples = ['<%= config.bin %> jobs cancel 0193a1b2-0000-7000-8000-000000000000']

  static override args = {id: Args.string({description: 'job id', required: true})}

  async run(): Promise<JobsCancelResult> {
    const db = this.openWrite()
    const reason = 'cancelled by operator'
    const r = this.guard(db, () => cancelQueuedJob(db, this.args.id, formatTs(new Date()), reason))
    if (!r.ok) {
      if (r.status === null) throw new DuctileError('not_found', `no job ${this.args.id} in job_queue`)
      throw new DuctileError('conflict', `job ${this.args.id} is ${r.status}; only queued jobs can be cancelled`)
    }
    if (this.human()) this.log(`Cancelled ${this.args.id}.`)
    return {job_id: this.args.id, status: 'dead', reason}
  }
}
