import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {readPayload} from '../../cli/payload.js'
import {loadRuntime, runtimeDbPath} from '../../plugins/runtime.js'
import {DuctileError} from '../../errors.js'
import {enqueueCommand, targetOf} from '../../engine/ingress.js'
import {wakeEngine} from '../../lib/lock.js'
import {openStore} from '../../schema/open.js'
import {assertSchemaCurrent} from '../../schema/migrations.js'
import {displayTarget} from '../../schema/pg-url.js'

export interface JobsEnqueueResult {
  status: 'enqueued' | 'deduplicated'
  job_id: string
  plugin: string
  command: string
  reason?: string
}

export default class JobsEnqueue extends BaseCommand<typeof JobsEnqueue> {
  static override usesDbPath = false
  static override summary = 'Add a job to the queue; prints its id'
  static override description =
    `The plugin and command must exist (exit 2 otherwise); the payload must be a JSON object. A handle job carries an event envelope {type: "cli.trigger", payload, source: "cli", event_id, timestamp}, as routed jobs do. A running engine on this host is woken and starts it at once (SIGURG); an engine that cannot be signalled finds it within its 250 ms poll.`
  static override examples = [
    '<%= config.bin %> jobs enqueue weather',
    `<%= config.bin %> jobs enqueue notify --command handle --payload '{"message": "hello"}'`,
    '<%= config.bin %> jobs enqueue notify --command handle --payload-file ./message.json --dedupe-key message-42 --max-attempts 2',
  ]

  static override args = {plugin: Args.string({description: 'plugin (or alias) name', required: true})}
  static override flags = {
    command: Flags.string({description: 'plugin command', default: 'poll'}),
    payload: Flags.string({description: 'payload, a JSON object'}),
    'payload-file': Flags.string({description: 'read the payload from a file (- for stdin)'}),
    'dedupe-key': Flags.string({description: 'skip if a job with this key succeeded within service.dedupe_ttl'}),
    'max-attempts': Flags.integer({description: 'attempts before giving up (default: the plugin retry.max_attempts)', min: 1, max: 100}),
  }

  async run(): Promise<JobsEnqueueResult> {
    const {plugin: name} = this.args
    const {command} = this.flags
    const payload = await readPayload(this.flags.payload, this.flags['payload-file'])
    const {config, registry} = loadRuntime(this.flags.config)
    targetOf(registry, name, command)
    const dbPath = runtimeDbPath(config, this.flags.db)
    const db = this.guard({path: displayTarget(dbPath)}, () => openStore(dbPath, {mode: 'write', check: assertSchemaCurrent}))
    try {
      const result = this.guard(db, () =>
        enqueueCommand(
          {db, registry, service: config.service, snapshotId: null, now: new Date()},
          {plugin: name, command, payload, origin: 'cli', maxAttempts: this.flags['max-attempts'], dedupeKey: this.flags['dedupe-key']},
        ),
      )
      if (result.status === 'duplicate_event') throw new DuctileError('conflict', result.reason)
      if (result.status === 'enqueued') wakeEngine(dbPath)
      const out: JobsEnqueueResult =
        result.status === 'enqueued'
          ? {status: 'enqueued', job_id: result.job.id, plugin: name, command}
          : {status: 'deduplicated', job_id: result.existingJobId, plugin: name, command, reason: result.reason}
      if (this.human()) this.log(out.status === 'enqueued' ? out.job_id : `${out.reason}`)
      return out
    } finally {
      db.close()
    }
  }
}
