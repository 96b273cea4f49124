/**
 * Timestamps: UTC text in SQLite's own layout with milliseconds,
 * `YYYY-MM-DD HH:MM:SS.SSS`. Lexical order equals time order, and the reference's
 * `datetime('now', '-1 hour')` comparisons are right against it.
 *
 * Every timestamp the project writes goes through `formatTs`; every one it reads through `parseTs`.
 */

export type Clock = () => Date

export const systemClock: Clock = () => new Date()

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** Format a Date as `YYYY-MM-DD HH:MM:SS.SSS` (UTC). */
export function formatTs(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('formatTs: invalid date')
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${pad(date.getUTCMilliseconds(), 3)}`
  )
}

export function nowTs(clock: Clock = systemClock): string {
  return formatTs(clock())
}

/** A cutoff `ms` milliseconds before now, in the stored layout (never wrap an indexed column in a function). */
export function tsAgo(ms: number, clock: Clock = systemClock): string {
  return formatTs(new Date(clock().getTime() - ms))
}

// Accepts our layout, SQLite's layout without fraction, and RFC 3339 with 0–9 fraction digits and Z or an offset.
const TS_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}:?\d{2})?$/

/** Parse any timestamp layout we may meet in a Ductile database. Returns null when it is not one. */
export function parseTs(text: string | null | undefined): Date | null {
  if (text == null) return null
  const m = TS_RE.exec(text.trim())
  if (!m) return null
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone] = m
  const ms = Number(`${frac}000`.slice(0, 3))
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms)
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    t -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000
  }
  const date = new Date(t)
  if (Number.isNaN(date.getTime())) return null
  // Reject impossible dates such as 2026-02-31 (Date.UTC rolls them over).
  if (!zone && date.getUTCDate() !== Number(d)) return null
  return date
}

/** True when the text is already in our stored layout. */
export function isStoredTs(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/.test(text)
}

/** Rewrite any accepted layout (e.g. the original's RFC 3339 `…T…Z`) into ours; null stays null. */
export function normalizeTs(text: string | null): string | null {
  if (text == null || text === '') return text
  if (isStoredTs(text)) return text
  const date = parseTs(text)
  return date ? formatTs(date) : text
}

const UNIT_MS = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const

const WORDS: Record<string, number> = {
  hourly: UNIT_MS.h,
  daily: UNIT_MS.d,
  weekly: UNIT_MS.w,
  monthly: 30 * UNIT_MS.d,
}

/**
 * Durations: `ms s m h d w` and combinations (`1h30m`, `30d`), plus the schedule
 * words hourly, daily, weekly, monthly. Returns milliseconds, or throws with the accepted forms.
 */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isFinite(text) && text >= 0) return text * 1000
    throw new RangeError(`invalid duration ${text}: expected a non-negative number of seconds`)
  }
  const s = String(text).trim().toLowerCase()
  const word = WORDS[s]
  if (word !== undefined) return word
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g
  let total = 0
  let consumed = 0
  for (let match = re.exec(s); match !== null; match = re.exec(s)) {
    if (match.index !== consumed) break
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
    consumed = match.index + match[0].length
  }
  if (s === '' || consumed !== s.length) {
    throw new RangeError(`invalid duration "${text}": use a number with a unit (ms, s, m, h, d, w), combined like 1h30m, or hourly/daily/weekly/monthly`)
  }
  return Math.round(total)
}

/** Human form of a millisecond duration: 850ms, 12.3s, 4m05s, 2h10m. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '-'
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${pad(Math.floor((ms % 60_000) / 1000))}s`
  return `${Math.floor(ms / 3_600_000)}h${pad(Math.floor((ms % 3_600_000) / 60_000))}m`
}
