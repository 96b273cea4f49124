import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {limitFlag} from '../../cli/flags.js'
import {colourStatus, renderTable, when} from '../../cli/render.js'
import {findBreaker, listBreakerTransitions} from '../../queries/breakers.js'
import type {BreakerTransition, CircuitBreaker} from '../../schema/types.js'

export interface BreakersHistoryResult {
  plugin: string
  command: string
  breaker: CircuitBreaker | null
  transitions: BreakerTransition[]
}

export default class BreakersHistory extends BaseCommand<typeof BreakersHistory> {
  static override summary = "A breaker's transitions, newest first: why it opened, went half-open, closed or was reset"
  static override description = 'The reference query "Show recent breaker transitions".'
  static override examples = ['<%= config.bin %> breakers history weather', '<%= config.bin %> breakers history weather --command poll --limit 50 --json']

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}
  static override flags = {
    command: Flags.string({description: 'plugin command', default: 'poll'}),
    limit: limitFlag(20),
  }

  async run(): Promise<BreakersHistoryResult> {
    const db = this.openRead()
    const {plugin} = this.args
    const {command, limit} = this.flags
    const result = this.guard(db, () =>
      db.read(() => ({
        plugin,
        command,
        breaker: findBreaker(db, plugin, command) ?? null,
        transitions: listBreakerTransitions(db, plugin, command, limit),
      })),
    )
    if (this.human()) {
      const b = result.breaker
      this.log(
        b
          ? `${plugin} ${command}: ${colourStatus(b.state)}, ${b.failure_count} failure(s), updated ${when(b.updated_at)}`
          : `${plugin} ${command}: no breaker row (never tripped)`,
      )
      if (result.transitions.length === 0) this.log('No transitions recorded.')
      else
        this.log(
          renderTable(
            [
              {header: 'AT', get: (t: BreakerTransition) => when(t.created_at)},
              {header: 'FROM', get: (t) => colourStatus(t.from_state)},
              {header: 'TO', get: (t) => colourStatus(t.to_state)},
              {header: 'REASON', get: (t) => t.reason},
              {header: 'FAILURES', get: (t) => t.failure_count, align: 'right'},
              {header: 'JOB', get: (t) => t.job_id ?? '-'},
            ],
            result.transitions,
          ),
        )
    }
    return result
  }
}
