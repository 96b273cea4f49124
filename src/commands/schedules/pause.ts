import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {configuredSchedules} from '../../config/schedules.js'
import {applyScheduleChange} from '../../cli/schedules.js'
import type {ScheduleChange} from '../../queries/schedules.js'

export interface SchedulesPauseResult {
  changed: ScheduleChange[]
}

export default class SchedulesPause extends BaseCommand<typeof SchedulesPause> {
  static override summary = "Pause a plugin's schedules (all of them, or one) until resumed; survives engine restarts"
  static override description = 'Sets status paused_manual with your reason. A running engine honours it from its next tick.'
  static override examples = [
    `<%= config.bin %> schedules pause weather --reason "upstream maintenance until 14:00"`,
    '<%= config.bin %> schedules pause weather every-15s --reason "too chatty" --json',
  ]

  static override args = {
    plugin: Args.string({description: 'plugin name', required: true}),
    schedule: Args.string({description: 'schedule id (default: every schedule of the plugin)'}),
  }

  static override flags = {reason: Flags.string({description: 'why (shown in schedules list)', required: true})}

  async run(): Promise<SchedulesPauseResult> {
    const db = this.openWrite()
    const {plugin, schedule} = this.args
    const changed = this.guard(db, () =>
      applyScheduleChange(db, {plugin, schedule, to: 'paused_manual', reason: this.flags.reason, configured: configuredSchedules(this.flags.config, plugin)}),
    )
    if (this.human()) for (const c of changed) this.log(`Paused ${c.plugin}/${c.schedule_id} (was ${c.from}).`)
    return {changed}
  }
}
