import {Args} from '@oclif/core'

import {BaseCommand} from '../cli/base.js'
import {prettyJson, when} from '../cli/render.js'
import {getPluginState} from '../queries/facts.js'

export interface StateResult {
  plugin: string
  /** The compatibility view (plugin_state.state); {} when the plugin has none. */
  state: unknown
  updated_at: string | null
  exists: boolean
}

export default class State extends BaseCommand<typeof State> {
  static override summary = "A plugin's compatibility view (plugin_state.state), as pretty JSON"
  static override description = 'The reference query "Inspect a plugin\'s compatibility view (latest fact, mirrored)".'
  static override examples = ['<%= config.bin %> state weather', '<%= config.bin %> state weather --json']

  static override args = {plugin: Args.string({description: 'plugin name', required: true})}

  async run(): Promise<StateResult> {
    const db = this.openRead()
    const {plugin} = this.args
    const row = this.guard(db, () => getPluginState(db, plugin))
    let state: unknown = {}
    if (row) {
      try {
        state = JSON.parse(row.state)
      } catch {
        state = row.state
      }
    }
    if (this.human()) {
      if (!row) this.log(`No state for plugin ${plugin}.`)
      else {
        this.log(prettyJson(row.state))
        this.log(`(updated ${when(row.updated_at)})`)
      }
    }
    return {plugin, state, updated_at: row?.updated_at ?? null, exists: Boolean(row)}
  }
}
