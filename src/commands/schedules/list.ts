import {Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../cli/base.js'
import {colourStatus, renderTable, when} from '../../cli/render.js'
import {listSchedules} from '../../queries/schedules.js'
import {parseTs} from '../../schema/time.js'
import type {ScheduleEntry} from '../../schema/types.js'

export interface ScheduleView extends ScheduleEntry {
  /** next_run_at is in the past: by how much (ms); 0 when not due yet. */
  overdue_ms: number
}

export interface SchedulesListResult {
  schedules: ScheduleView[]
}

export default class SchedulesList extends BaseCommand<typeof SchedulesList> {
  static override summary = 'Upcoming scheduled runs (active schedules by next run; every schedule with --all)'
  static override description = 'The reference query "See upcoming scheduled runs". Overdue schedules (next run more than a tick in the past) are highlighted.'
  static override examples = ['<%= config.bin %> schedules list', '<%= config.bin %> schedules list --all --plugin weather --json']

  static override flags = {
    all: Flags.boolean({description: 'paused and exhausted schedules too'}),
    plugin: Flags.string({description: 'only this plugin'}),
  }

  async run(): Promise<SchedulesListResult> {
    const db = this.openRead()
    const now = Date.now()
    const rows = this.guard(db, () => listSchedules(db, {all: this.flags.all, plugin: this.flags.plugin}))
    const schedules = rows.map((s) => {
      const next = parseTs(s.next_run_at)?.getTime()
      return {...s, overdue_ms: s.status === 'active' && next !== undefined && next < now ? now - next : 0}
    })
    if (this.human()) {
      if (schedules.length === 0) this.log(this.flags.all ? 'No schedules recorded.' : 'No active schedules.')
      else
        this.log(
          renderTable(
            [
              {header: 'PLUGIN', get: (s: ScheduleView) => s.plugin},
              {header: 'SCHEDULE', get: (s) => s.schedule_id},
              {header: 'COMMAND', get: (s) => s.command},
              {header: 'STATUS', get: (s) => colourStatus(s.status) + (s.reason ? ` (${s.reason})` : '')},
              {header: 'SPEC', get: (s) => s.spec ?? '-'},
              {header: 'NEXT RUN', get: (s) => (s.overdue_ms > 60_000 ? chalk.red(`${when(s.next_run_at)} OVERDUE`) : when(s.next_run_at))},
              {header: 'LAST SUCCESS', get: (s) => when(s.last_success_at)},
            ],
            schedules,
          ),
        )
    }
    return {schedules}
  }
}
