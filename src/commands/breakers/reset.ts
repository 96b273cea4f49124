import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {usageError} from '../../errors.js'
import {listBreakers, resetBreaker} from '../../queries/breakers.js'
import {formatTs} from '../../schema/time.js'

export interface BreakersResetResult {
  plugin: string
  command: string
  from: string
  to: 'closed'
}

export default class BreakersReset extends BaseCommand<typeof BreakersReset> {
  static summary = 'Close a circuit breaker by hand (a manual_reset transition); works with the engine running or stopped'
  static description = 'Clears the failure count, opened_at, last_failure_at and last_job_id, so the next reconcile counts the latest completion afresh. The scheduler sees the change on its next tick.'
  static examples = ['<%= config.bin %> breakers reset weather', '<%= config.bin %> breakers reset weather --command poll --json']

  static args = {plugin: Args.string({description: 'plugin name', required: true})}
  static flags = {command: Flags.string({description: 'plugin command', default: 'poll'})}

  async run(): Promise<BreakersResetResult> {
    const db = this.openWrite()
    const {plugin} = this.args
    const {command} = this.flags
    const r = this.guard(db, () => resetBreaker(db, plugin, command, formatTs(new Date())))
    if (!r) {
      const known = this.guard(db, () => listBreakers(db, {all: true})).map((b) => `${b.plugin} ${b.command}`)
      throw usageError(`no circuit breaker for plugin ${plugin}, command ${command}: it never ran, or the name is wrong; nothing was written`, known.length ? `breakers that exist: ${known.join(', ')}` : 'no breaker exists yet (`ductile breakers list --all`)')
    }
    if (this.human()) this.log(`Reset circuit breaker for ${plugin} (${command}): ${r.from} → closed.`)
    return {plugin, command, from: r.from, to: 'closed'}
  }
}
