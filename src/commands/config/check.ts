import {BaseCommand} from '../../cli/base.js'
import type {DuctileError} from '../../errors.js'
import {formatIssue, loadConfig} from '../../config/load.js'
import type {Config, ConfigIssue} from '../../config/types.js'
import {requireConfigFile, webhookIssues} from '../../plugins/runtime.js'
import {discoverPlugins} from '../../plugins/discover.js'
import {compilePipelines} from '../../plugins/pipelines.js'
import {affinityPlan, allowedCpus, formatCpuList, otherEnginesCpus} from '../../engine/affinity.js'
import {spawnPath} from '../../engine/spawner.js'
import {errorMessage} from '../../errors.js'

export interface ConfigCheckResult {
  ok: boolean
  file: string
  files: string[]
  plugins: string[]
  errors: ConfigIssue[]
  warnings: ConfigIssue[]
  /** The merged configuration with secrets masked. */
  config: unknown
  /** What `engine start` on this machine would do: who starts plugins, and the CPUs it would keep to (null: all). */
  engine: {spawn: 'python-helper' | 'node-helper' | 'engine' | null; python: string | null; cpus: string | null}
}

export default class ConfigCheck extends BaseCommand<typeof ConfigCheck> {
  static override usesDbPath = false
  static override summary = 'Validate config.yaml, its includes and every plugin manifest, without starting anything'
  static override description = 'Lists every problem with its file and key. Exit 0 when valid (warnings allowed), 2 on any error.'
  static override examples = ['<%= config.bin %> config check --config /etc/ductile', '<%= config.bin %> config check --config ./config.yaml --json']

  async run(): Promise<ConfigCheckResult> {
    const file = requireConfigFile(this.flags.config)
    const config = loadConfig(file, {throwOnError: false})
    const registry = discoverPlugins(config)
    const issues = [...config.issues, ...registry.issues, ...compilePipelines(config, registry).issues, ...webhookIssues(config, registry)]
    const engine = engineOnThisMachine(config.service, file, issues)
    const errors = issues.filter((i) => i.severity === 'error')
    const warnings = issues.filter((i) => i.severity === 'warning')
    const result: ConfigCheckResult = {
      ok: errors.length === 0,
      file,
      files: config.files,
      plugins: [...registry.plugins.keys()].sort(),
      errors,
      warnings,
      config: config.sanitized,
      engine,
    }
    if (this.human()) {
      for (const e of errors) this.log(`error: ${formatIssue(e)}`)
      for (const w of warnings) this.log(`warning: ${formatIssue(w)}`)
      this.log(
        result.ok ? `${file}: valid (${result.plugins.length} plugin(s): ${result.plugins.join(', ') || 'none'}).` : `${file}: ${errors.length} error(s).`,
      )
      if (engine.spawn) {
        const who = engine.spawn === 'engine' ? 'the engine itself' : `the ${engine.spawn.replace('-', ' ')}${engine.python ? ` (${engine.python})` : ''}`
        this.log(
          `engine start here: plugins started by ${who}; ${engine.cpus === null ? 'all CPUs' : `confined to CPU ${engine.cpus} (max_workers ${config.service.max_workers})`}.`,
        )
      }
    }
    if (!result.ok) {
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(2)
    }
    return result
  }
}

/** service.spawn_helper and service.cpu_affinity resolved against this machine (python3 on PATH, allowed CPUs). */
function engineOnThisMachine(service: Config['service'], file: string, issues: ConfigIssue[]): ConfigCheckResult['engine'] {
  const cpus = affinityPlan(service.cpu_affinity, service.max_workers, allowedCpus(), otherEnginesCpus())
  const engine: ConfigCheckResult['engine'] = {spawn: null, python: null, cpus: cpus ? formatCpuList(cpus) : null}
  try {
    const plan = spawnPath(service.spawn_helper, service.max_workers)
    engine.spawn = plan.kind ? `${plan.kind}-helper` : 'engine'
    engine.python = plan.python ?? null
  } catch (e) {
    issues.push({severity: 'error', file, path: 'service.spawn_helper', message: `${errorMessage(e)} (${(e as DuctileError).hint})`})
  }
  return engine
}
