import type {Config} from '../config/load.js'
import type {PluginRegistry} from '../plugins/discover.js'
import type {Engine, EngineHooks} from './engine.js'
import {Scheduler} from './scheduler.js'

/** The engine's collaborators (scheduler, router) wired for a config. */
export function engineHooks(config: Config, registry: PluginRegistry): EngineHooks {
  let scheduler: Scheduler | null = null
  const schedulerFor = (engine: Engine) =>
    (scheduler ??= new Scheduler({
      db: engine.db,
      config,
      registry,
      clock: engine.clock,
      logger: engine.logger,
      enqueue: (input) => engine.enqueue(input),
      killJob: (id) => engine.killJob(id),
    }))
  return {
    tick: (engine) => {
      schedulerFor(engine).tick()
    },
  }
}
