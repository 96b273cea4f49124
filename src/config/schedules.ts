import {loadConfig} from './load.js'
import {locateConfig} from './locate.js'

/** The schedules a config declares for a plugin (empty when no config is found). */
export function configuredSchedules(flag: string | undefined, plugin: string): {id: string; command: string}[] {
  const file = locateConfig(flag)
  if (!file) return []
  const cfg = loadConfig(file, {throwOnError: false})
  return cfg.plugins[plugin]?.schedules.map((s) => ({id: s.id, command: s.command})) ?? []
}
