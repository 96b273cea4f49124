import {hostname} from 'node:os'

import chalk from 'chalk'

import type {Overview} from '../queries/overview.js'
import {formatDuration} from '../schema/time.js'
import {colourStatus, firstLine, printable} from './render.js'

/** Overwatch frames: plain lines that fit the terminal, coloured by status when colour is on. */

export interface FrameState {
  width: number
  height: number
  plugin?: string
  status?: string
  paused?: boolean
  help?: boolean
  prompt?: string
  dbPath: string
}

const pad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : s + ' '.repeat(n - s.length))
// chalk adds escape codes: pad by the visible length.
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')
const padC = (s: string, n: number) => s + ' '.repeat(Math.max(0, n - visible(s).length))

export const HELP_LINES = ['q quit   p pause/resume   f filter by plugin (empty = all)   s cycle status filter   ? this help']

export function renderFrame(ov: Overview, st: FrameState): string[] {
  const w = Math.max(40, st.width)
  const lines: string[] = []
  const e = ov.engine
  const silent = e.silent ? `${e.silent} silent past the lease` : ''
  const engine =
    e.state === 'running'
      ? chalk.green(e.count > 1 ? `${e.count} engines running` : `engine PID ${e.pid} running${e.host && e.host !== hostname() ? ` on ${e.host}` : ''}`) +
        (silent ? chalk.red(`, ${silent}`) : '')
      : e.state === 'silent'
        ? chalk.red(`no engine beating: ${silent}`)
        : e.state === 'stale lock'
          ? chalk.red(`engine PID ${e.pid} gone (stale lock)`)
          : chalk.yellow('engine stopped')
  const filters = [st.plugin ? `plugin=${st.plugin}` : '', st.status ? `status=${st.status}` : '', st.paused ? chalk.yellow('PAUSED') : '']
    .filter(Boolean)
    .join(' ')
  lines.push(`${chalk.bold('Ductile Overwatch')}  ${st.dbPath}  ${engine}  ${ov.at.slice(0, 19).replace('T', ' ')}Z${filters ? `  ${filters}` : ''}`)
  const total = ov.counts.reduce((n, c) => n + c.count, 0)
  lines.push(`Jobs: ${ov.counts.map((c) => `${colourStatus(c.status)} ${c.count}`).join('  ') || 'none'}  (total ${total})`)
  lines.push('')
  lines.push(chalk.bold(`Running (${ov.running.length})`))
  if (ov.running.length === 0) lines.push('  none')
  for (const r of ov.running.slice(0, 8)) {
    const alive = r.alive === null ? '-' : r.alive ? chalk.green('alive') : chalk.red('gone')
    lines.push(
      `  ${pad(r.plugin, 18)} ${pad(r.command, 8)} ${pad(formatDuration(r.elapsed_ms), 8)} pid ${pad(String(r.plugin_pid ?? '-'), 8)} ${alive}  ${r.id}`,
    )
  }
  lines.push('')
  lines.push(chalk.bold('Latest completions'))
  if (ov.latest.length === 0) lines.push('  none')
  for (const c of ov.latest) {
    lines.push(
      `  ${c.completed_at.slice(11, 19)} ${padC(colourStatus(c.status), 10)} ${pad(c.plugin, 18)} ${pad(c.command, 8)} ${pad(formatDuration(c.duration_ms), 8)} ${c.last_error ? firstLine(c.last_error, Math.max(10, w - 70)) : ''}`,
    )
  }
  lines.push('')
  lines.push(chalk.bold('Breakers not closed'))
  if (ov.breakers.length === 0) lines.push('  none')
  for (const b of ov.breakers)
    lines.push(
      `  ${pad(b.plugin, 18)} ${pad(b.command, 8)} ${padC(colourStatus(b.state), 10)} failures ${b.failure_count}  since ${(b.opened_at ?? '-').slice(0, 19)}`,
    )
  lines.push('')
  lines.push(chalk.bold('Next scheduled runs'))
  if (ov.schedules.length === 0) lines.push('  none')
  for (const s of ov.schedules) lines.push(`  ${pad(s.plugin, 18)} ${pad(s.schedule_id, 14)} ${pad(s.command, 8)} ${(s.next_run_at ?? '-').slice(0, 19)}`)
  if (st.help) lines.push('', ...HELP_LINES)
  // Plugin text (errors, names) reaches the terminal only with its control characters escaped.
  const body = lines.map(printable).map((l) => (visible(l).length > w ? `${visible(l).slice(0, w - 1)}…` : l))
  const footer = printable(st.prompt !== undefined ? `filter by plugin: ${st.prompt}█` : chalk.dim('q quit  p pause  f filter  s status  ? help'))
  const room = Math.max(3, st.height - 1)
  return [...body.slice(0, room), footer]
}

/**
 * The keys in one read of a terminal: several arrive together when they are pasted or typed faster than
 * they are read ("mailer\r" is six letters and Enter). An escape sequence (an arrow key: ESC [ A) is one key.
 */
export function keysOf(chunk: string): string[] {
  const keys: string[] = []
  for (let i = 0; i < chunk.length; ) {
    const m = chunk[i] === '\x1b' ? /^\x1b(?:\[[0-?]*[ -/]*[@-~]|O.)?/.exec(chunk.slice(i)) : null
    const key = m ? m[0] : (chunk[i] as string)
    keys.push(key)
    i += key.length
  }
  return keys
}
