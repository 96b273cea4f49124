import {Args} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../cli/base.js'
import {type JobExplanation, explainJob} from '../../cli/explain.js'
import {colourStatus} from '../../cli/render.js'
import {readJobRecord} from '../../queries/explain.js'
import {DuctileError} from '../../errors.js'

export type ExplainJobResult = JobExplanation

export default class ExplainJob extends BaseCommand<typeof ExplainJob> {
  static override summary = "Why a job is where it is: its story from the database's rows, with the rows it cites"
  static override description =
    'Who enqueued it and why (operator, schedule, pipeline step and its baggage, hook, retry), each attempt and how it ended, the gaps between retries, crash recovery, config snapshots, and one sentence at the top. Built only from rows (job_queue, job_transitions, job_attempts, job_log, event_context, config_snapshots), so it works on a copied file after the engine is gone; --json lists the events with the rows each cites (table#id).'
  static override examples = [
    '<%= config.bin %> explain job 0193a1b2-0000-7000-8000-000000000000',
    '<%= config.bin %> explain job 0193a1b2-0000-7000-8000-000000000000 --json',
  ]

  static override args = {id: Args.string({description: 'job id', required: true})}

  async run(): Promise<ExplainJobResult> {
    const db = this.openRead()
    const record = this.guard(db, () => readJobRecord(db, this.args.id))
    if (!record)
      throw new DuctileError('not_found', `no job ${this.args.id}: no queue row, transition or job_log row names it`, {
        hint: 'job_log keeps attempts for 30 days (prune); check the id with `ductile jobs list` or `ductile jobs logs`',
      })
    const story = explainJob(record)
    if (this.human()) {
      this.log(`${chalk.bold(`Job ${story.job_id}`)}  ${story.plugin ?? '?'} ${story.command ?? '?'}  ${colourStatus(story.status)}`)
      this.log(`  ${story.summary}`)
      this.log('')
      for (const e of story.events) this.log(`  ${e.at}  ${e.text}  ${chalk.dim(`[${e.rows.join(', ')}]`)}`)
    }
    return story
  }
}
