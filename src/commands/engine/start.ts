import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {formatIssue} from '../../config/load.js'
import {loadRuntime, runtimeDbPath} from '../../plugins/runtime.js'
import {ENGINE_TITLE, allowedCpus, confineEngine, cpusBeside, parseCpuList} from '../../engine/affinity.js'
import {Engine} from '../../engine/engine.js'
import {Logger} from '../../engine/log.js'
import {errorMessage} from '../../errors.js'
import type {Listeners} from '../../http/server.js'

export interface EngineStartResult {
  db: string
  jobs_started: number
  jobs_finished: number
}

export default class EngineStart extends BaseCommand<typeof EngineStart> {
  static override usesDbPath = false
  static override summary = 'Run the engine in the foreground: scheduler and worker loop'
  static override description =
    `Takes the engine lock (<db>.pid; a second engine on the same database is refused), records a config snapshot, recovers jobs a crashed engine left running, then claims and runs jobs until SIGINT or SIGTERM. When max_workers is less than the CPUs it may use, it first confines itself (and so its plugins) to max_workers of them, leaving the others free: the lowest ones that other engines on the machine do not use (service.cpu_affinity: off to use them all). Its process title is "ductile engine start …". With api.enabled it serves the HTTP API on api.listen (default 127.0.0.1:8080), and with webhooks.listen the signed webhooks; both stop accepting before the engine drains. On a signal it stops claiming and lets running plugins finish (each is bounded by its timeout); a second signal terminates them. Logs one line per job start and end on stderr.`
  static override examples = [
    '<%= config.bin %> engine start --config /etc/ductile/config.yaml',
    '<%= config.bin %> engine start --config ./examples --log-format json',
  ]

  static override flags = {
    'log-format': Flags.option({options: ['text', 'json'] as const, description: 'log line format (default: service.log_format, else text)'})(),
    'log-level': Flags.option({options: ['debug', 'info', 'warn', 'error'] as const, description: 'minimum level (default: service.log_level)'})(),
  }

  async run(): Promise<EngineStartResult> {
    const {config, registry, pipelines, issues} = loadRuntime(this.flags.config)
    const logger = new Logger(this.flags['log-format'] ?? config.service.log_format, this.flags['log-level'] ?? config.service.log_level)
    for (const i of issues)
      logger.log(
        i.severity === 'error' ? 'error' : 'warn',
        i.scope === 'schedule' ? 'schedule invalid (kept paused_invalid)' : i.severity === 'error' ? 'plugin refused' : 'config warning',
        {detail: formatIssue(i)},
      )
    const db = runtimeDbPath(config, this.flags.db)
    // `ps` shows "ductile engine start --config …", and other engines find this one when they choose CPUs.
    process.title = [ENGINE_TITLE, 'start', ...this.argv].join(' ')
    // The CPUs it was given, before it keeps to its workers' share: its HTTP listeners run beside it on these.
    const given = allowedCpus()
    const confined = confineEngine(config.service.cpu_affinity, config.service.max_workers)
    if (confined && 'via' in confined) {
      logger.info('engine confined to the CPUs its workers need', {
        cpus: confined.cpus,
        max_workers: config.service.max_workers,
        via: confined.via,
        all_cpus: 'service.cpu_affinity: off',
      })
    } else if (confined) {
      logger.warn('could not confine the engine to its CPUs; it runs on all of them', {cpus: confined.cpus, error: confined.error})
    }
    const engine = new Engine({config, registry, dbPath: db, version: this.config.version, logger, pipelines})
    // Handlers first: a SIGTERM while the engine starts (systemd stopping it right away) must still drain
    // and exit 0, not kill the process by the default action. The stop waits for the start to finish.
    let stopFor: (why: string, force: boolean) => void = () => {}
    const stopped = new Promise<void>((resolve) => {
      let stops = 0
      stopFor = (why, force) => {
        stops++
        logger.info('stopping', {why, action: stops === 1 && !force ? 'draining running jobs' : 'terminating running plugins'})
        starting
          // Listeners first: no request is accepted that the stopping engine would not see through.
          .then(() => (stops === 1 ? listeners?.close() : undefined))
          .then(() => engine.stop({force: force || stops > 1}))
          .then(resolve, (err) => {
            logger.error('stop failed', {error: errorMessage(err)})
            resolve()
          })
      }
      const onSignal = (sig: NodeJS.Signals) => stopFor(`signal ${sig}`, false)
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    })
    let listeners: Listeners | null = null
    const starting = engine.start().then(async () => {
      if (!config.api.enabled && !config.webhooks.listen) return
      // Loaded only here: the HTTP framework costs nothing to the commands that never listen.
      const {startListeners} = await import('../../http/server.js')
      try {
        listeners = await startListeners(engine.httpDeps(), {
          cpus: confined && 'via' in confined ? cpusBeside(given, parseCpuList(confined.cpus)) : null,
          // Listeners that die leave the engine deaf: it stops (exit 1), and systemd's Restart= brings both back.
          onFailure: (message) => {
            logger.error('the http listeners stopped; stopping the engine', {error: message})
            process.exitCode = 1
            stopFor('the http listeners failed', false)
          },
        })
      } catch (err) {
        await engine.stop()
        throw err
      }
    })
    await starting
    await stopped
    return {db, jobs_started: engine.stats.started, jobs_finished: engine.stats.finished}
  }
}
