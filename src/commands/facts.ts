import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../cli/base.js'
import {instantFlag, limitFlag} from '../cli/flags.js'
import {prettyJson, when} from '../cli/render.js'
import {listFacts, listFactsAt} from '../queries/facts.js'
import {parseJsonOr} from '../lib/json.js'
import {formatTs} from '../schema/time.js'
import type {PluginFact} from '../schema/types.js'

export interface FactsResult {
  plugin: string
  fact_type: string | null
  /** --at: only facts created at or before this instant. */
  at: string | null
  /** Each fact; `approximate` for a legacy row without seq, whose place is known only by its created_at. */
  facts: (Omit<PluginFact, 'fact_json'> & {fact: unknown; approximate: boolean})[]
}

export default class Facts extends BaseCommand<typeof Facts> {
  static override summary = "A plugin's recent facts (the durable record): newest seq first, legacy rows without seq last"
  static override description = 'The reference query "Inspect recent append-only plugin facts".'
  static override examples = [
    '<%= config.bin %> facts weather',
    '<%= config.bin %> facts weather --type weather.reading --limit 5',
    '<%= config.bin %> facts weather --json',
    `<%= config.bin %> facts weather --at '2026-11-30 04:00'`,
  ]

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}
  static override flags = {
    type: Flags.string({description: 'only this fact_type'}),
    limit: limitFlag(20),
    at: instantFlag({description: 'the facts as they were then: created at or before this time (UTC, or a duration ago: 2h)'}),
  }

  async run(): Promise<FactsResult> {
    const db = this.openRead()
    const {plugin} = this.args
    const at = this.flags.at ? formatTs(this.flags.at) : null
    const opts = {plugin, factType: this.flags.type, limit: this.flags.limit}
    const rows = this.guard(db, () => (at ? listFactsAt(db, {...opts, at}) : listFacts(db, opts)))
    const facts = rows.map(({fact_json, ...rest}) => ({...rest, fact: parseJsonOr(fact_json, fact_json), approximate: rest.seq === null}))
    if (this.human()) {
      if (facts.length === 0)
        this.log(`No facts for plugin ${plugin}${this.flags.type ? ` of type ${this.flags.type}` : ''}${at ? ` at or before ${at}` : ''}.`)
      else if (at) this.log(chalk.dim(`As at ${at}:`))
      for (const f of rows) {
        const approx = f.seq === null ? chalk.yellow('  (no seq: a legacy row, ordered by its time only)') : ''
        this.log(`${chalk.bold(`seq ${f.seq ?? '-'}`)}  ${when(f.created_at)}  ${f.fact_type}  job=${f.job_id}  command=${f.command}${approx}`)
        this.log(
          prettyJson(f.fact_json)
            .split('\n')
            .map((l) => `  ${l}`)
            .join('\n'),
        )
      }
    }
    return {plugin, fact_type: this.flags.type ?? null, at, facts}
  }
}
