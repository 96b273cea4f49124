import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {applyScheduleChange} from '../../cli/schedules.js'
import type {ScheduleChange} from '../../queries/schedules.js'

export interface SchedulesResumeResult {
  changed: ScheduleChange[]
}

export default class SchedulesResume extends BaseCommand<typeof SchedulesResume> {
  static override summary = 'Resume paused schedules (status active again)'
  static override examples = ['<%= config.bin %> schedules resume weather', '<%= config.bin %> schedules resume weather every-15s --json']

  static override args = {
    plugin: Args.string({description: 'plugin name', required: true}),
    schedule: Args.string({description: 'schedule id (default: every paused schedule of the plugin)'}),
  }

  async run(): Promise<SchedulesResumeResult> {
    const db = this.openWrite()
    const {plugin, schedule} = this.args
    const changed = this.guard(db, () => applyScheduleChange(db, {plugin, schedule, to: 'active', reason: null, configured: []}))
    if (this.human()) for (const c of changed) this.log(`Resumed ${c.plugin}/${c.schedule_id}.`)
    return {changed}
  }
}
