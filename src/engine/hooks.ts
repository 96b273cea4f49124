import type {Config} from '../config/load.js'
import type {PluginRegistry} from '../plugins/discover.js'
import type {EngineHooks} from './engine.js'

/** The engine's collaborators (scheduler, router) wired for a config. */
export function engineHooks(_config: Config, _registry: PluginRegistry): EngineHooks {
  return {}
}
