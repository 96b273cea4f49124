import type {Config} from './types.js'
import {loadConfig} from './load.js'
import {locateConfig} from './locate.js'

/** The schedules a config declares for a plugin (empty when no config is found). */
export function configuredSchedules(flag: string | undefined, plugin: string): {id: string; command: string}[] {
  const file = locateConfig(flag)
  if (!file) return []
  return schedulesOf(loadConfig(file, {throwOnError: false}), plugin)
}

/** A plugin's configured schedules (id and command) in a loaded config. */
export function schedulesOf(cfg: Config, plugin: string): {id: string; command: string}[] {
  return cfg.plugins[plugin]?.schedules.map((s) => ({id: s.id, command: s.command})) ?? []
}
