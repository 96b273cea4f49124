import {homedir} from 'node:os'
import {join} from 'node:path'

import {DuctileError} from '../errors.js'
import {type PluginRegistry, discoverPlugins, hasCommand} from './discover.js'
import {assertNoConfigErrors, loadConfig} from '../config/load.js'
import type {Config, ConfigIssue} from '../config/types.js'
import {type Pipeline, compilePipelines} from './pipelines.js'
import {chooseDbPath, locateConfig} from '../config/locate.js'

/** The config and the plugins it names: what the engine and the operator write commands need. */
export interface Runtime {
  config: Config
  registry: PluginRegistry
  pipelines: Pipeline[]
  issues: ConfigIssue[]
}

export function requireConfigFile(flag?: string): string {
  const file = locateConfig(flag)
  if (!file) {
    const checked = [process.env.DUCTILE_CONFIG_DIR, join(homedir(), '.config', 'ductile', 'config.yaml'), '/etc/ductile/config.yaml'].filter(Boolean)
    throw new DuctileError('config_missing', `no config found (checked: ${checked.join(', ')})`, {
      hint: 'pass --config PATH or set DUCTILE_CONFIG_DIR',
    })
  }
  return file
}

/** Load config and manifests. With `strict`, any error (config or plugin) is thrown; otherwise returned. */
export function loadRuntime(flag?: string, opts: {strict?: boolean} = {}): Runtime {
  const config = loadConfig(requireConfigFile(flag), {throwOnError: false})
  const registry = discoverPlugins(config)
  const compiled = compilePipelines(config, registry)
  const webhooks = webhookIssues(config, registry)
  const issues = [...config.issues, ...registry.issues, ...compiled.issues, ...webhooks]
  if (opts.strict) assertNoConfigErrors(issues, {strict: true})
  else assertNoConfigErrors([...config.issues, ...compiled.issues, ...webhooks])
  return {config, registry, pipelines: compiled.pipelines, issues}
}

/** Webhook endpoints must name a plugin and command that exist (a typo would 404 every delivery). */
export function webhookIssues(config: Config, registry: PluginRegistry): ConfigIssue[] {
  const out: ConfigIssue[] = []
  config.webhooks.endpoints.forEach((e, i) => {
    const p = registry.plugins.get(e.plugin)
    const path = `webhooks.endpoints[${e.name || i}]`
    if (e.plugin && !p) out.push({severity: 'error', file: e.file, path: `${path}.plugin`, message: `unknown plugin ${e.plugin}`})
    else if (p && !hasCommand(p, e.command))
      out.push({severity: 'error', file: e.file, path: `${path}.command`, message: `plugin ${e.plugin} has no command ${e.command}`})
  })
  return out
}

/** The database of a runtime: --db, $DUCTILE_DB, state.path, the default. */
export function runtimeDbPath(config: Config, flag?: string): string {
  return chooseDbPath(flag, config.statePath)
}

/**
 * Plugin names a config runs (its entries and every discovered manifest), for commands that only need to
 * tell a known name from a typo; empty when no usable config is found (those commands then say so).
 */
export function configuredPlugins(flag?: string): Set<string> {
  try {
    const file = locateConfig(flag)
    return file ? new Set(discoverPlugins(loadConfig(file, {throwOnError: false})).plugins.keys()) : new Set()
  } catch {
    return new Set()
  }
}
