import {BaseCommand} from '../../cli/base.js'
import {type ConfigIssue, formatIssue, loadConfig} from '../../config/load.js'
import {requireConfigFile} from '../../config/runtime.js'
import {discoverPlugins} from '../../plugins/discover.js'
import {compilePipelines} from '../../config/pipelines.js'

export interface ConfigCheckResult {
  ok: boolean
  file: string
  files: string[]
  plugins: string[]
  errors: ConfigIssue[]
  warnings: ConfigIssue[]
  /** The merged configuration with secrets masked. */
  config: unknown
}

export default class ConfigCheck extends BaseCommand<typeof ConfigCheck> {
  static summary = 'Validate config.yaml, its includes and every plugin manifest, without starting anything'
  static description = 'Lists every problem with its file and key. Exit 0 when valid (warnings allowed), 2 on any error.'
  static examples = ['<%= config.bin %> config check --config /etc/ductile', '<%= config.bin %> config check --config ./config.yaml --json']

  async run(): Promise<ConfigCheckResult> {
    const file = requireConfigFile(this.flags.config)
    const config = loadConfig(file, {throwOnError: false})
    const registry = discoverPlugins(config)
    const issues = [...config.issues, ...registry.issues, ...compilePipelines(config, registry).issues]
    const errors = issues.filter((i) => i.severity === 'error')
    const warnings = issues.filter((i) => i.severity === 'warning')
    const result: ConfigCheckResult = {ok: errors.length === 0, file, files: config.files, plugins: [...registry.plugins.keys()].sort(), errors, warnings, config: config.sanitized}
    if (this.human()) {
      for (const e of errors) this.log(`error: ${formatIssue(e)}`)
      for (const w of warnings) this.log(`warning: ${formatIssue(w)}`)
      this.log(result.ok ? `${file}: valid (${result.plugins.length} plugin(s): ${result.plugins.join(', ') || 'none'}).` : `${file}: ${errors.length} error(s).`)
    }
    if (!result.ok) {
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(2)
    }
    return result
  }
}
