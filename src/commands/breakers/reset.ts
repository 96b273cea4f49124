import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {configuredPlugins} from '../../plugins/runtime.js'
import {usageError} from '../../errors.js'
import {listBreakers, resetBreaker} from '../../queries/breakers.js'
import {formatTs} from '../../schema/time.js'

export interface BreakersResetResult {
  plugin: string
  command: string
  /** The state it had; null when it had no breaker row (never tripped), and nothing was written. */
  from: string | null
  to: 'closed'
}

export default class BreakersReset extends BaseCommand<typeof BreakersReset> {
  static override summary = 'Close a circuit breaker by hand (a manual_reset transition); works with the engine running or stopped'
  static override description =
    'Clears the failure count, opened_at, last_failure_at and last_job_id, so the next reconcile counts the latest completion afresh. The scheduler sees the change on its next tick.'
  static override examples = ['<%= config.bin %> breakers reset weather', '<%= config.bin %> breakers reset weather --command poll --json']

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}
  static override flags = {command: Flags.string({description: 'plugin command', default: 'poll'})}

  async run(): Promise<BreakersResetResult> {
    const db = this.openWrite()
    const {plugin} = this.args
    const {command} = this.flags
    const r = this.guard(db, () => resetBreaker(db, plugin, command, formatTs(new Date())))
    if (!r) {
      // No breaker row: a plugin the config knows has simply never tripped; any other name is a mistake.
      const configured = configuredPlugins(this.flags.config)
      if (!configured.has(plugin)) {
        const known = [...new Set([...configured, ...this.guard(db, () => listBreakers(db, {all: true})).map((b) => b.plugin)])].sort()
        throw usageError(
          `unknown plugin ${plugin}: no circuit breaker and no plugin of that name in the config; nothing was written`,
          known.length ? `known plugins: ${known.join(', ')}` : 'pass --config, or check the name (`ductile breakers list --all`)',
        )
      }
      if (this.human()) this.log(`${plugin} (${command}) has no circuit breaker yet: it never tripped. Nothing to reset.`)
      return {plugin, command, from: null, to: 'closed'}
    }
    if (this.human()) this.log(`Reset circuit breaker for ${plugin} (${command}): ${r.from} → closed.`)
    return {plugin, command, from: r.from, to: 'closed'}
  }
}
