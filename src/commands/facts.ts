import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../cli/base.js'
import {limitFlag} from '../cli/flags.js'
import {prettyJson, when} from '../cli/render.js'
import {listFacts} from '../queries/facts.js'
import type {PluginFact} from '../schema/types.js'

export interface FactsResult {
  plugin: string
  fact_type: string | null
  facts: (Omit<PluginFact, 'fact_json'> & {fact: unknown})[]
}

export default class Facts extends BaseCommand<typeof Facts> {
  static override summary = "A plugin's recent facts (the durable record): newest seq first, legacy rows without seq last"
  static override description = 'The reference query "Inspect recent append-only plugin facts".'
  static override examples = [
    '<%= config.bin %> facts weather',
    '<%= config.bin %> facts weather --type weather.reading --limit 5',
    '<%= config.bin %> facts weather --json',
  ]

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}
  static override flags = {
    type: Flags.string({description: 'only this fact_type'}),
    limit: limitFlag(20),
  }

  async run(): Promise<FactsResult> {
    const db = this.openRead()
    const {plugin} = this.args
    const rows = this.guard(db, () => listFacts(db, {plugin, factType: this.flags.type, limit: this.flags.limit}))
    const facts = rows.map(({fact_json, ...rest}) => ({...rest, fact: safeParse(fact_json)}))
    if (this.human()) {
      if (facts.length === 0) this.log(`No facts for plugin ${plugin}${this.flags.type ? ` of type ${this.flags.type}` : ''}.`)
      for (const f of rows) {
        this.log(`${chalk.bold(`seq ${f.seq ?? '-'}`)}  ${when(f.created_at)}  ${f.fact_type}  job=${f.job_id}  command=${f.command}`)
        this.log(
          prettyJson(f.fact_json)
            .split('\n')
            .map((l) => `  ${l}`)
            .join('\n'),
        )
      }
    }
    return {plugin, fact_type: this.flags.type ?? null, facts}
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
