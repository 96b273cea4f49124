import {BaseCommand} from '../../cli/base.js'
import {renderTable} from '../../cli/render.js'
import {formatIssue} from '../../config/load.js'
import {requireConfigFile} from '../../plugins/runtime.js'
import {loadConfig} from '../../config/load.js'
import {discoverPlugins} from '../../plugins/discover.js'

export interface PluginView {
  name: string
  uses: string | null
  version: string
  commands: {name: string; type: string}[]
  schedules: string[]
  dir: string
  enabled: boolean
}

export interface PluginsListResult {
  plugins: PluginView[]
  problems: string[]
}

export default class PluginsList extends BaseCommand<typeof PluginsList> {
  static override usesDbPath = false
  static override summary = 'Plugins discovered from plugin_roots: name, version, commands, schedules, problems'
  static override examples = ['<%= config.bin %> plugins list --config /etc/ductile', '<%= config.bin %> plugins list --json']

  async run(): Promise<PluginsListResult> {
    const config = loadConfig(requireConfigFile(this.flags.config), {throwOnError: false})
    const registry = discoverPlugins(config)
    const plugins: PluginView[] = [...registry.plugins.values()]
      .map((p) => ({
        name: p.name,
        uses: p.name === p.manifest.name ? null : p.manifest.name,
        version: p.manifest.version,
        commands: p.manifest.commands.map((c) => ({name: c.name, type: c.type})),
        schedules: p.config.schedules.map(
          (s) => `${s.id}: ${s.every ? `every ${s.every}` : s.cron ? `cron ${s.cron}` : s.at ? `at ${s.at}` : `after ${s.after}`} → ${s.command}`,
        ),
        dir: p.manifest.dir,
        enabled: p.config.enabled,
      }))
      .sort((a, b) => a.name.localeCompare(b.name))
    const problems = [...config.issues, ...registry.issues].map((i) => `${i.severity}: ${formatIssue(i)}`)
    if (this.human()) {
      if (plugins.length === 0) this.log('No plugins found.')
      else
        this.log(
          renderTable(
            [
              {header: 'NAME', get: (p: PluginView) => (p.uses ? `${p.name} (uses ${p.uses})` : p.name)},
              {header: 'VERSION', get: (p) => p.version || '-'},
              {header: 'COMMANDS', get: (p) => p.commands.map((c) => c.name).join(', ')},
              {header: 'SCHEDULES', get: (p) => p.schedules.join('; ') || '-'},
            ],
            plugins,
          ),
        )
      for (const p of problems) this.log(p)
    }
    return {plugins, problems}
  }
}
