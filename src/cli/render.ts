import chalk from 'chalk'
import Table from 'cli-table3'
import {formatDistanceStrict} from 'date-fns/formatDistanceStrict'

import {parseTs} from '../schema/time.js'

/** Human rendering shared by the commands: tables, status colours, absolute + relative times. */

/** The SGR codes our own colours use (chalk's named styles): reset, bold/dim, foreground colours. */
const OUR_SGR = /^\x1b\[((?:0|1|2|22|3[0-9]|9[0-7])(?:;(?:0|1|2|22|3[0-9]|9[0-7]))*)?m/
// C0 controls except tab and newline, DEL, and the C1 controls.
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g

/**
 * Text for a terminal: every control character made visible (`\x1b`, `\r`, `\x07`),
 * so text from plugins cannot set the window title, clear the screen or move the cursor. Newlines and tabs
 * stay. With colour on, the colour codes this program adds are kept, and only those.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c: string, offset: number, whole: string) =>
    c === '\x1b' && chalk.level > 0 && OUR_SGR.test(whole.slice(offset, offset + 24)) ? c : visibleControl(c),
  )
}

/** One control character as visible text: `\r`, `\x1b`, `\u202e` (the terminal's and the web's escapes). */
export function visibleControl(c: string): string {
  if (c === '\r') return '\\r'
  const code = c.charCodeAt(0)
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

const STATUS_COLOURS: Record<string, (s: string) => string> = {
  succeeded: (s) => chalk.green(s),
  failed: (s) => chalk.red(s),
  timed_out: (s) => chalk.yellow(s),
  dead: (s) => chalk.magenta(s),
  running: (s) => chalk.cyan(s),
  skipped: (s) => chalk.gray(s),
  // breaker states and schedule statuses
  open: (s) => chalk.red(s),
  half_open: (s) => chalk.yellow(s),
  closed: (s) => chalk.green(s),
  active: (s) => chalk.green(s),
  paused_manual: (s) => chalk.yellow(s),
  paused_invalid: (s) => chalk.red(s),
  exhausted: (s) => chalk.gray(s),
}

export function colourStatus(status: string | null | undefined): string {
  if (status == null) return '-'
  return (STATUS_COLOURS[status] ?? ((s: string) => s))(status)
}

export interface Column<R> {
  header: string
  get: (row: R) => string | number | null | undefined
  align?: 'left' | 'right'
}

/** A table without coloured borders (cli-table3 colours them even when piped). */
export function renderTable<R>(columns: Column<R>[], rows: R[]): string {
  const table = new Table({
    head: columns.map((c) => chalk.bold(c.header)),
    style: {head: [], border: [], compact: true},
    colAligns: columns.map((c) => c.align ?? 'left'),
    wordWrap: false,
  })
  for (const r of rows) table.push(columns.map((c) => String(c.get(r) ?? '-')))
  return table.toString()
}

/** `2026-11-27 20:41:07 (3 minutes ago)`: absolute UTC and relative to now. */
export function when(ts: string | null | undefined, now: Date = new Date()): string {
  if (!ts) return '-'
  const d = parseTs(ts)
  if (!d) return ts
  const abs = ts.slice(0, 19)
  return `${abs} (${relative(d, now)})`
}

export function relative(d: Date, now: Date = new Date()): string {
  const diff = d.getTime() - now.getTime()
  if (Math.abs(diff) < 1000) return 'now'
  const dist = formatDistanceStrict(d, now)
  return diff < 0 ? `${dist} ago` : `in ${dist}`
}

/** First line, cut to a width, for error cells. */
export function firstLine(text: string | null | undefined, width = 80): string {
  if (!text) return '-'
  const line = text.split('\n', 1)[0] ?? ''
  return line.length > width ? `${line.slice(0, width - 1)}…` : line
}

/** The last `lines` lines of a text (stderr tails). */
export function tail(text: string | null | undefined, lines = 5): string {
  if (!text) return ''
  const all = text.replace(/\s+$/, '').split('\n')
  return all.slice(-lines).join('\n')
}

export function prettyJson(text: string | null | undefined): string {
  if (text == null) return '-'
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    return text
  }
}

export function parseJsonOr<T>(text: string | null | undefined, fallback: T): unknown {
  if (text == null) return fallback
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
