import {Args} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../cli/base.js'
import {colourStatus, prettyJson, renderTable, when} from '../../cli/render.js'
import {type ChildJob, type JobInspection, inspectJob} from '../../queries/jobs.js'
import {DuctileError} from '../../errors.js'
import type {JobAttempt, JobTransition} from '../../schema/types.js'

export type JobsInspectResult = JobInspection

export default class JobsInspect extends BaseCommand<typeof JobsInspect> {
  static override summary = 'Everything about one job: queue row, transitions, attempts, logs, lineage, children'
  static override examples = [
    '<%= config.bin %> jobs inspect 0193a1b2-0000-7000-8000-000000000000',
    '<%= config.bin %> jobs inspect 0193a1b2-0000-7000-8000-000000000000 --json',
  ]

  static override args = {id: Args.string({description: 'job id', required: true})}

  async run(): Promise<JobsInspectResult> {
    const db = this.openRead()
    const id = this.args.id
    const result = this.guard(db, () => inspectJob(db, id))
    if (!result) {
      throw new DuctileError('not_found', `no job ${id} in job_queue`, {
        hint: 'terminal jobs are pruned from the queue after 24 hours; `ductile jobs logs --job ID` still shows their attempts',
      })
    }
    if (this.human()) this.render(result)
    return result
  }

  private render(r: JobsInspectResult): void {
    const j = r.job
    this.log(chalk.bold(`Job ${j.id}`))
    this.log(`  plugin ${j.plugin}  command ${j.command}  status ${colourStatus(j.status)}  attempt ${j.attempt}/${j.max_attempts}`)
    this.log(`  submitted_by ${j.submitted_by}  dedupe_key ${j.dedupe_key ?? '-'}`)
    this.log(`  created ${when(j.created_at)}  started ${when(j.started_at)}  completed ${when(j.completed_at)}`)
    if (j.next_retry_at) this.log(`  next retry ${when(j.next_retry_at)}`)
    if (j.last_error) this.log(`  last_error ${j.last_error}`)
    if (j.parent_job_id) this.log(`  parent job ${j.parent_job_id}  source event ${j.source_event_id ?? '-'}`)
    this.log(`  payload ${j.payload ?? '-'}`)
    if (!r.consistent.status || !r.consistent.attempt)
      this.log(chalk.yellow('  warning: the cached status or attempt disagrees with the transition/attempt facts'))

    this.log(chalk.bold('\nTransitions'))
    if (r.transitions.length === 0) this.log('  none')
    else
      this.log(
        renderTable(
          [
            {header: 'AT', get: (t: JobTransition) => when(t.created_at)},
            {header: 'FROM', get: (t) => colourStatus(t.from_status)},
            {header: 'TO', get: (t) => colourStatus(t.to_status)},
            {header: 'REASON', get: (t) => t.reason ?? '-'},
          ],
          r.transitions,
        ),
      )

    this.log(chalk.bold('\nAttempts'))
    if (r.attempts.length === 0) this.log('  none')
    else
      this.log(
        renderTable(
          [
            {header: 'ATTEMPT', get: (a: JobAttempt) => a.attempt},
            {header: 'STARTED', get: (a) => when(a.created_at)},
            {header: 'PLUGIN PID', get: (a) => a.plugin_pid ?? '-'},
            {header: 'ENGINE PID', get: (a) => a.engine_pid ?? '-'},
          ],
          r.attempts,
        ),
      )

    this.log(chalk.bold('\nLog rows'))
    if (r.logs.length === 0) this.log('  none')
    for (const l of r.logs) {
      this.log(`  #${l.attempt} ${colourStatus(l.status)} completed ${when(l.completed_at)}${l.last_error ? `  error: ${l.last_error}` : ''}`)
    }

    this.log(chalk.bold('\nPipeline'))
    if (r.lineage.length === 0) this.log('  not part of a pipeline')
    else {
      this.log(`  pipeline ${r.pipeline ?? '-'}  step ${r.step ?? '-'}`)
      this.log('  lineage (root → leaf):')
      for (const c of r.lineage) this.log(`    ${c.id}  ${c.pipeline_name ?? '-'}/${c.step_id || '(root)'}  ${when(c.created_at)}`)
      this.log('  baggage:')
      this.log(
        prettyJson(JSON.stringify(r.baggage))
          .split('\n')
          .map((l) => `    ${l}`)
          .join('\n'),
      )
    }

    this.log(chalk.bold('\nChild jobs'))
    if (r.children.length === 0) this.log('  none')
    else
      this.log(
        renderTable(
          [
            {header: 'ID', get: (c: ChildJob) => c.id},
            {header: 'PLUGIN', get: (c) => c.plugin},
            {header: 'COMMAND', get: (c) => c.command},
            {header: 'STATUS', get: (c) => colourStatus(c.status)},
            {header: 'SUBMITTED BY', get: (c) => c.submitted_by},
          ],
          r.children,
        ),
      )
  }
}
