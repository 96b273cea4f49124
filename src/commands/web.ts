import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base.js'
import {isLoopback, parseListen} from '../config/ingress.js'
import {locateConfig} from '../config/locate.js'
import {usageError} from '../errors.js'
import {wakeEngine} from '../lib/lock.js'
import {loadRuntime} from '../plugins/runtime.js'
import type {Db} from '../schema/db.js'
import {startWeb} from '../web/server.js'

export interface WebResult {
  /** Where it listened (http://host:port/). */
  url: string
  read_only: boolean
  database: string
}

export default class Web extends BaseCommand<typeof Web> {
  static override summary = 'The web Overwatch: jobs, plugins, breakers, schedules and health in a browser, live'
  static override description =
    'Serves pages rendered here (no CDN: every asset comes from this process) against any database the CLI opens; no engine is needed. Pages update live through one server-sent event stream. On a loopback address pages are readable without signing in; beyond it, sign in with an API token (api.auth.tokens). Actions (retry, cancel, enqueue, pause/resume a schedule, reset a breaker) need a token with jobs:rw or plugin:rw; --read-only hides them and opens a SQLite database read-only. Runs until SIGINT or SIGTERM; --json prints one line with the address once it listens.'
  static override examples = [
    '<%= config.bin %> web',
    '<%= config.bin %> web --listen 127.0.0.1:9000 --read-only',
    '<%= config.bin %> web --config /etc/ductile --db postgres://ductile@db1/ductile',
  ]

  static override flags = {
    listen: Flags.string({description: 'host:port to listen on', default: '127.0.0.1:8181'}),
    'read-only': Flags.boolean({description: 'no actions: pages only (a SQLite database is opened read-only)'}),
  }

  async run(): Promise<WebResult> {
    const listen = parseListen(this.flags.listen)
    if (typeof listen === 'string') throw usageError(`--listen ${this.flags.listen}: ${listen}`, 'give host:port, e.g. 127.0.0.1:8181')
    const readOnly = this.flags['read-only']
    // The config is optional: it brings the tokens, the plugins (their commands, for enqueue) and the lease.
    const runtime = locateConfig(this.flags.config) ? loadRuntime(this.flags.config) : null
    const db = this.openRead()
    const path = this.dbPath()
    let writer: Db | undefined
    const web = await startWeb({
      listen,
      deps: {
        db,
        // Opened at the first action (and closed when the command ends): reading never takes a write handle.
        writer: readOnly ? null : () => (writer ??= this.openWrite()),
        config: runtime?.config ?? null,
        registry: runtime?.registry ?? null,
        tokens: runtime?.config.api.tokens ?? [],
        openRead: isLoopback(listen.host),
        wake: () => void wakeEngine(path),
        log: (message, fields) => process.stderr.write(`${message} ${JSON.stringify(fields)}\n`),
      },
    })
    const result: WebResult = {url: web.url, read_only: readOnly, database: db.path}
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify(result)}\n`)
    else this.log(`Ductile Overwatch on ${web.url}${readOnly ? ' (read-only)' : ''} for ${db.path}; Ctrl-C stops it.`)
    if (!isLoopback(listen.host)) process.stderr.write('warning: listening beyond localhost in plain HTTP: put a TLS-terminating proxy in front\n')
    await new Promise<void>((resolve) => {
      const stop = () => resolve()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    await web.close()
    return result
  }

  // The one JSON line is printed when listening; at exit only an error is printed (it did not start).
  protected override logJson(json: unknown): void {
    if (json && typeof json === 'object' && 'error' in json) super.logJson(json)
  }
}
