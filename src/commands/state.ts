import {Args} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../cli/base.js'
import {prettyJson, when} from '../cli/render.js'
import {instantFlag} from '../cli/flags.js'
import {getPluginState, listFactsAt} from '../queries/facts.js'
import type {Db} from '../schema/db.js'
import {parseJsonOr} from '../lib/json.js'
import {formatTs} from '../schema/time.js'

export interface StateResult {
  plugin: string
  /** The compatibility view (plugin_state.state); {} when the plugin has none. With --at: the state then. */
  state: unknown
  updated_at: string | null
  exists: boolean
  /** --at: the instant asked for, and the fact the state is told from (null: no fact at or before it). */
  at?: string
  fact?: {id: string; seq: number | null; fact_type: string; job_id: string; created_at: string} | null
  /** The fact is a legacy row without seq: its order among facts of the same time is not known. */
  approximate?: boolean
}

export default class State extends BaseCommand<typeof State> {
  static override summary = "A plugin's compatibility view (plugin_state.state), as pretty JSON"
  static override description = 'The reference query "Inspect a plugin\'s compatibility view (latest fact, mirrored)".'
  static override examples = [
    '<%= config.bin %> state weather',
    '<%= config.bin %> state weather --json',
    `<%= config.bin %> state weather --at '2026-11-30 04:00'`,
    '<%= config.bin %> state weather --at 2h',
  ]

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}
  static override flags = {
    at: instantFlag({description: 'the state as it was then, from the newest fact at or before this time (UTC, or a duration ago: 2h)'}),
  }

  async run(): Promise<StateResult> {
    const db = this.openRead()
    const {plugin} = this.args
    if (this.flags.at) return this.stateAt(db, plugin, formatTs(this.flags.at))
    const row = this.guard(db, () => getPluginState(db, plugin))
    const state = row ? parseJsonOr(row.state, row.state) : {}
    if (this.human()) {
      if (!row) this.log(`No state for plugin ${plugin}.`)
      else {
        this.log(prettyJson(row.state))
        this.log(`(updated ${when(row.updated_at)})`)
      }
    }
    return {plugin, state, updated_at: row?.updated_at ?? null, exists: Boolean(row)}
  }

  /** The state at a moment: the newest fact then (each fact is the state snapshot its job wrote). */
  private stateAt(db: Db, plugin: string, at: string): StateResult {
    const [f] = this.guard(db, () => listFactsAt(db, {plugin, at, limit: 1}))
    if (!f) {
      if (this.human())
        this.log(
          `No fact of plugin ${plugin} at or before ${at}: its state then is not recorded (facts are written by plugins with fact_outputs; prune keeps them).`,
        )
      return {plugin, state: null, updated_at: null, exists: false, at, fact: null, approximate: false}
    }
    const fact = {id: f.id, seq: f.seq, fact_type: f.fact_type, job_id: f.job_id, created_at: f.created_at}
    if (this.human()) {
      this.log(prettyJson(f.fact_json))
      this.log(`(as at ${at}: fact seq ${f.seq ?? '-'} of ${when(f.created_at)}, written by job ${f.job_id})`)
      if (f.seq === null) this.log(chalk.yellow('(a legacy fact without seq: facts of the same time are only approximately ordered)'))
    }
    return {plugin, state: parseJsonOr(f.fact_json, f.fact_json), updated_at: f.created_at, exists: true, at, fact, approximate: f.seq === null}
  }
}
