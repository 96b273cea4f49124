import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../cli/base.js'
import {type BreakerExplanation, explainBreaker} from '../../cli/explain.js'
import {colourStatus} from '../../cli/render.js'
import {DEFAULT_CIRCUIT_BREAKER} from '../../config/defaults.js'
import {readBreakerRecord} from '../../queries/explain.js'

export type ExplainBreakerResult = BreakerExplanation

export default class ExplainBreaker extends BaseCommand<typeof ExplainBreaker> {
  static override summary = 'Why a circuit breaker is in its state: the failures that counted, the threshold, when it may probe, who reset it'
  static override description =
    'Built from circuit_breakers, circuit_breaker_transitions, job_log and the config snapshot in force when it opened (its threshold and cooldown, else the defaults: 3 failures, 30 min). --json lists the events with the rows each cites.'
  static override examples = ['<%= config.bin %> explain breaker weather', '<%= config.bin %> explain breaker weather --command poll --json']

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}
  static override flags = {command: Flags.string({description: 'plugin command', default: 'poll'})}

  async run(): Promise<ExplainBreakerResult> {
    const db = this.openRead()
    const {plugin} = this.args
    const record = this.guard(db, () => readBreakerRecord(db, plugin, this.flags.command))
    const story = explainBreaker(record, DEFAULT_CIRCUIT_BREAKER)
    if (this.human()) {
      this.log(`${chalk.bold(`Breaker ${plugin} (${this.flags.command})`)}  ${colourStatus(story.state)}`)
      this.log(`  ${story.summary}`)
      if (story.events.length) this.log('')
      for (const e of story.events) this.log(`  ${e.at}  ${e.text}  ${chalk.dim(`[${e.rows.join(', ')}]`)}`)
    }
    return story
  }
}
