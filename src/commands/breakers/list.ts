import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {colourStatus, renderTable, when} from '../../cli/render.js'
import {listBreakers} from '../../queries/breakers.js'
import type {CircuitBreaker} from '../../schema/types.js'

export interface BreakersListResult {
  breakers: CircuitBreaker[]
}

export default class BreakersList extends BaseCommand<typeof BreakersList> {
  static override summary = 'Circuit breakers that are not closed (every breaker with --all)'
  static override description = 'The reference query "Identify plugins with active circuit breakers".'
  static override examples = ['<%= config.bin %> breakers list', '<%= config.bin %> breakers list --all --json']

  static override flags = {all: Flags.boolean({description: 'closed breakers too'})}

  async run(): Promise<BreakersListResult> {
    const db = this.openRead()
    const breakers = this.guard(db, () => listBreakers(db, {all: this.flags.all}))
    if (this.human()) {
      if (breakers.length === 0) this.log(this.flags.all ? 'No circuit breakers recorded.' : 'No open circuit breakers.')
      else
        this.log(
          renderTable(
            [
              {header: 'PLUGIN', get: (b: CircuitBreaker) => b.plugin},
              {header: 'COMMAND', get: (b) => b.command},
              {header: 'STATE', get: (b) => colourStatus(b.state)},
              {header: 'FAILURES', get: (b) => b.failure_count, align: 'right'},
              {header: 'OPENED', get: (b) => when(b.opened_at)},
              {header: 'LAST FAILURE', get: (b) => when(b.last_failure_at)},
              {header: 'LAST JOB', get: (b) => b.last_job_id ?? '-'},
            ],
            breakers,
          ),
        )
    }
    return {breakers}
  }
}
