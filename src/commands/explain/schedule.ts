import {Args} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../cli/base.js'
import {type ScheduleExplanation, explainSchedule} from '../../cli/explain.js'
import {colourStatus} from '../../cli/render.js'
import {readScheduleRecords} from '../../queries/explain.js'
import {DuctileError} from '../../errors.js'

export interface ExplainScheduleResult {
  schedules: ScheduleExplanation[]
}

export default class ExplainSchedule extends BaseCommand<typeof ExplainSchedule> {
  static override summary = 'When a schedule last fired and why it has not since: breaker, if_running, window, pause, or not due'
  static override description =
    "From schedule_entries and schedule_decisions, the scheduler's decisions kept as facts (a row per fire and per change of reason; idle ticks leave none), with the job of the last fire and the breaker. All of a plugin's schedules, or the one named."
  static override examples = ['<%= config.bin %> explain schedule weather', '<%= config.bin %> explain schedule weather every-15s --json']

  static override args = {
    plugin: Args.string({description: 'plugin name', required: true}),
    schedule: Args.string({description: 'schedule id (default: every schedule of the plugin)'}),
  }

  async run(): Promise<ExplainScheduleResult> {
    const db = this.openRead()
    const {plugin, schedule} = this.args
    const records = this.guard(db, () => readScheduleRecords(db, plugin, schedule))
    if (records.length === 0)
      throw new DuctileError('not_found', `no schedule ${schedule ? `${schedule} ` : ''}of plugin ${plugin} in schedule_entries`, {
        hint: 'the engine writes a row for each configured schedule at its first tick; `ductile schedules list --all` lists them',
      })
    const schedules = records.map((r) => explainSchedule(r))
    if (this.human())
      for (const s of schedules) {
        this.log(`${chalk.bold(`Schedule ${s.plugin} ${s.schedule_id}`)}  ${colourStatus(s.status)}`)
        this.log(`  ${s.summary}`)
        for (const e of s.events.slice(-10)) this.log(`  ${e.at}  ${e.text}  ${chalk.dim(`[${e.rows.join(', ')}]`)}`)
        this.log('')
      }
    return {schedules}
  }
}
