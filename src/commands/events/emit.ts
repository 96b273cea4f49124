import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {readPayload} from '../../cli/payload.js'
import {loadRuntime, runtimeDbPath} from '../../plugins/runtime.js'
import {usageError} from '../../errors.js'
import {emitEvent} from '../../engine/ingress.js'
import {wakeEngine} from '../../lib/lock.js'
import {openStore} from '../../schema/open.js'
import {assertSchemaCurrent} from '../../schema/migrations.js'
import {displayTarget} from '../../schema/pg-url.js'

export interface EventsEmitResult {
  event_id: string
  type: string
  enqueued: {job_id: string; pipeline: string; step: string}[]
  skipped: {pipeline: string; step: string; reason: string}[]
}

export default class EventsEmit extends BaseCommand<typeof EventsEmit> {
  static override usesDbPath = false
  static override summary = 'Start the pipelines whose `on` matches an event, as if a plugin had emitted it'
  static override description =
    'Enqueues the first step of every matching pipeline (a new pipeline instance each), submitted_by cli. A running engine on this host is woken and starts them at once. Exit 0 with an empty list when no pipeline matches.'
  static override examples = [
    `<%= config.bin %> events emit weather.changed --payload '{"city": "Hobart", "celsius": 31}'`,
    `<%= config.bin %> events emit weather.changed --payload-file ./event.json --dedupe-key reading-42 --json`,
  ]

  static override args = {type: Args.string({description: 'event type', required: true})}
  static override flags = {
    payload: Flags.string({description: 'event payload, a JSON object'}),
    'payload-file': Flags.string({description: 'read the payload from a file (- for stdin)'}),
    'dedupe-key': Flags.string({description: 'skip targets that already have this key queued, running or recently succeeded'}),
  }

  async run(): Promise<EventsEmitResult> {
    if (this.args.type.trim() === '') throw usageError('the event type is empty', 'example: ductile events emit weather.changed')
    const payload = await readPayload(this.flags.payload, this.flags['payload-file'])
    const {config, registry, pipelines} = loadRuntime(this.flags.config)
    const dbPath = runtimeDbPath(config, this.flags.db)
    const db = this.guard({path: displayTarget(dbPath)}, () => openStore(dbPath, {mode: 'write', check: assertSchemaCurrent}))
    try {
      const result = this.guard(db, () => {
        // A routing error (route_failed, exit 2) rolls back every job of the event.
        const r = db.tx(() =>
          emitEvent(
            {db, registry, pipelines, service: config.service, snapshotId: null, now: new Date()},
            {type: this.args.type, payload, origin: 'cli', dedupeKey: this.flags['dedupe-key']},
          ),
        )
        return {
          event_id: r.eventId,
          type: this.args.type,
          enqueued: r.enqueued.map((e) => ({job_id: e.jobId, pipeline: e.pipeline, step: e.step})),
          skipped: r.skipped,
        }
      })
      if (result.enqueued.length) wakeEngine(dbPath)
      if (this.human()) {
        if (result.enqueued.length === 0 && result.skipped.length === 0) this.log(`No pipeline starts on ${result.type}.`)
        for (const e of result.enqueued) this.log(`${e.job_id}  ${e.pipeline}/${e.step}`)
        for (const s of result.skipped) this.log(`skipped ${s.pipeline}/${s.step}: ${s.reason}`)
      }
      return result
    } finally {
      db.close()
    }
  }
}
