import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base.js'
import {usageError} from '../errors.js'
import {durationFlag, statusFlag} from '../cli/flags.js'
import {keysOf, renderFrame} from '../cli/watch.js'
import {JOB_STATUSES} from '../schema/definition.js'
import {type Overview, readOverview} from '../queries/overview.js'

export type WatchResult = Overview

const MIN_INTERVAL_MS = 100
const ENTER_ALT = '\x1b[?1049h\x1b[?25l'
const LEAVE_ALT = '\x1b[?25h\x1b[?1049l'

export default class Watch extends BaseCommand<typeof Watch> {
  static override summary = 'Overwatch: a live view of jobs, running plugins, completions, breakers and schedules'
  static override description =
    `Full screen, refreshed every --interval. Keys: q quit, p pause/resume, f filter by plugin, s cycle the status filter, ? help. Read-only; never blocks the engine. When stdout is not a terminal it prints one plain frame per interval; --once prints one frame and exits (--json gives that frame's data).`
  static override examples = ['<%= config.bin %> watch', '<%= config.bin %> watch --interval 5s --plugin weather', '<%= config.bin %> watch --once']

  static override flags = {
    interval: durationFlag({description: 'refresh every', default: 1000}),
    once: Flags.boolean({description: 'print one frame and exit'}),
    plugin: Flags.string({description: 'only this plugin'}),
    status: statusFlag({description: 'only this status (completions and running)'}),
  }

  async run(): Promise<WatchResult> {
    // 0s would redraw in a busy loop.
    if (this.flags.interval < MIN_INTERVAL_MS)
      throw usageError(
        `--interval ${this.flags.interval}ms is too short: at least ${MIN_INTERVAL_MS}ms`,
        'the default is 1s; 250ms refreshes four times a second',
      )
    const db = this.openRead()
    // Engines on a shared database are alive while they beat within the lease (the config's, when there is one).
    const engineLeaseMs = db.kind === 'postgres' ? (await this.optionalConfig())?.service.engine_lease_ms : undefined
    const state = {plugin: this.flags.plugin, status: this.flags.status, paused: false, help: false, prompt: undefined as string | undefined}
    const read = () => this.guard(db, () => readOverview(db, {plugin: state.plugin, status: state.status, latest: 10, engineLeaseMs}))
    const frame = (ov: Overview) => renderFrame(ov, {...state, width: process.stdout.columns ?? 120, height: process.stdout.rows ?? 40, dbPath: db.path})
    if (this.flags.once || this.jsonEnabled()) {
      const ov = read()
      if (this.human()) this.log(frame(ov).slice(0, -1).join('\n'))
      return ov
    }
    const interval = this.flags.interval
    if (!process.stdout.isTTY || !process.stdin.isTTY) {
      // Piped or under cron: one plain frame per interval until a signal.
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => this.log(`${frame(read()).slice(0, -1).join('\n')}\n`), interval)
        this.log(`${frame(read()).slice(0, -1).join('\n')}\n`)
        const stop = () => {
          clearInterval(timer)
          resolve()
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
      return read()
    }
    const out = process.stdout
    let last = read()
    const draw = () => {
      if (!state.paused) last = read()
      out.write(
        '\x1b[H' +
          frame(last)
            .map((l) => `${l}\x1b[K`)
            .join('\n') +
          '\x1b[J',
      )
    }
    out.write(ENTER_ALT)
    process.stdin.setRawMode(true)
    process.stdin.resume()
    process.stdin.setEncoding('utf8')
    await new Promise<void>((resolve) => {
      const timer = setInterval(draw, interval)
      const finish = () => {
        clearInterval(timer)
        process.stdin.setRawMode(false)
        process.stdin.pause()
        process.stdin.removeListener('data', onData)
        out.removeListener('resize', draw)
        out.write(LEAVE_ALT)
        resolve()
      }
      const statuses = [undefined, ...JOB_STATUSES]
      const onKey = (key: string) => {
        if (key === '\x03') return finish()
        if (state.prompt !== undefined) {
          if (key === '\r' || key === '\n') {
            state.plugin = state.prompt.trim() || undefined
            state.prompt = undefined
          } else if (key === '\x1b') state.prompt = undefined
          else if (key === '\x7f' || key === '\b') state.prompt = state.prompt.slice(0, -1)
          else if (/^[\x20-\x7e]+$/.test(key)) state.prompt += key
          return draw()
        }
        if (key === 'q') return finish()
        if (key === 'p') state.paused = !state.paused
        else if (key === 'f') state.prompt = ''
        else if (key === 's') state.status = statuses[(statuses.indexOf(state.status as (typeof statuses)[number]) + 1) % statuses.length]
        else if (key === '?') state.help = !state.help
        draw()
      }
      const onData = (chunk: string) => {
        for (const key of keysOf(chunk)) onKey(key)
      }
      process.stdin.on('data', onData)
      out.on('resize', draw)
      process.once('SIGTERM', finish)
      process.once('SIGINT', finish)
      draw()
    })
    return last
  }
}
