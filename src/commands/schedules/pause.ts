import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {configuredSchedules} from '../../config/schedules.js'
import {DuctileError} from '../../errors.js'
import {type ScheduleChange, changeScheduleStatus} from '../../queries/schedules.js'
import {formatTs} from '../../schema/time.js'

export interface SchedulesPauseResult {
  changed: ScheduleChange[]
}

export default class SchedulesPause extends BaseCommand<typeof SchedulesPause> {
  static summary = "Pause a plugin's schedules (all of them, or one) until resumed; survives engine restarts"
  static description = 'Sets status paused_manual with your reason. A running engine honours it from its next tick.'
  static examples = [
    `<%= config.bin %> schedules pause weather_probe --reason "upstream maintenance until 14:00"`,
    '<%= config.bin %> schedules pause weather_probe quarter-hour --reason "too chatty" --json',
  ]

  static args = {
    plugin: Args.string({description: 'plugin name', required: true}),
    schedule: Args.string({description: 'schedule id (default: every schedule of the plugin)'}),
  }

  static flags = {reason: Flags.string({description: 'why (shown in schedules list)', required: true})}

  async run(): Promise<SchedulesPauseResult> {
    const db = this.openWrite()
    const {plugin, schedule} = this.args
    const changed = this.guard(db, () =>
      changeScheduleStatus(db, {
        plugin,
        scheduleId: schedule,
        to: 'paused_manual',
        reason: this.flags.reason,
        now: formatTs(new Date()),
        configured: configuredSchedules(this.flags.config, plugin),
      }),
    )
    if (changed.length === 0) {
      throw new DuctileError('usage', `no schedule ${schedule ? `${plugin}/${schedule}` : `of plugin ${plugin}`} is known`, {
        hint: '`ductile schedules list --all` shows the schedules the engine has recorded',
      })
    }
    if (this.human()) for (const c of changed) this.log(`Paused ${c.plugin}/${c.schedule_id} (was ${c.from}).`)
    return {changed}
  }
}
