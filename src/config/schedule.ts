import {Cron} from 'croner'

import {parseDuration, parseTs} from '../schema/time.js'

/**
 * Schedule specs: every (with hourly/daily/weekly/monthly), 5-field cron in a zone (croner
 * handles zones and DST), one-shot at (RFC 3339) and after; only_between windows, not_on days. Shared by the
 * config check and the scheduler.
 */

/** One entry of a plugin's `schedules:` list, as validated. */
export interface ScheduleConfig {
  id: string
  every?: string
  cron?: string
  at?: string
  after?: string
  jitter_ms: number
  catch_up: 'skip' | 'run_once' | 'run_all'
  if_running: 'skip' | 'queue' | 'cancel'
  only_between?: string
  not_on?: (string | number)[]
  timezone?: string
  command: string
  payload: Record<string, unknown>
}

/** A schedule's spec, parsed: one kind, with exactly what that kind needs. */
export type NormalSchedule =
  | {kind: 'every'; intervalMs: number; spec: string}
  | {kind: 'cron'; cron: Cron; spec: string}
  | {kind: 'at'; atMs: number; spec: string}
  | {kind: 'after'; afterMs: number; spec: string}

const DAY_NAMES: Record<string, number> = {
  sun: 0,
  sunday: 0,
  mon: 1,
  monday: 1,
  tue: 2,
  tues: 2,
  tuesday: 2,
  wed: 3,
  wednesday: 3,
  thu: 4,
  thur: 4,
  thurs: 4,
  thursday: 4,
  fri: 5,
  friday: 5,
  sat: 6,
  saturday: 6,
}

export function parseDays(list: (string | number)[]): Set<number> {
  const out = new Set<number>()
  for (const d of list) {
    if (typeof d === 'number' || /^\d+$/.test(String(d))) {
      const n = Number(d)
      if (n < 0 || n > 7) throw new Error(`day ${d} is out of range (0–6, 7 = Sunday)`)
      out.add(n % 7)
      continue
    }
    const n = DAY_NAMES[String(d).toLowerCase()]
    if (n === undefined) throw new Error(`unknown day "${d}" (use sun..sat, full names, or 0–6)`)
    out.add(n)
  }
  return out
}

/** Minutes since midnight of a window edge "HH:MM". */
function hhmm(text: string): number {
  const [h = Number.NaN, m = Number.NaN] = text.split(':').map(Number)
  if (!(h >= 0 && h <= 23 && m >= 0 && m <= 59)) throw new Error(`invalid time ${text}`)
  return h * 60 + m
}

export function parseWindow(text: string): {start: number; end: number} {
  const m = /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(text)
  if (!m?.[1] || !m[2]) throw new Error(`only_between must be "HH:MM-HH:MM" (got "${text}")`)
  const w = {start: hhmm(m[1]), end: hhmm(m[2])}
  if (w.start === w.end) throw new Error('only_between start and end must differ')
  return w
}

/** Half-open [start, end); a window whose end is before its start runs overnight. */
export function inWindow(minute: number, w: {start: number; end: number}): boolean {
  return w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end
}

const fmtCache = new Map<string, Intl.DateTimeFormat>()
/** Weekday (0 = Sunday) and minute of the day of an instant in a zone. */
export function localParts(ms: number, timeZone: string): {weekday: number; minute: number} {
  let f = fmtCache.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23'})
    fmtCache.set(timeZone, f)
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
  return {weekday: DAY_NAMES[(parts.weekday ?? '').toLowerCase()] ?? -1, minute: Number(parts.hour) * 60 + Number(parts.minute)}
}

function assertZone(zone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', {timeZone: zone})
  } catch {
    throw new Error(`unknown time zone "${zone}" (use an IANA name such as Europe/Berlin)`)
  }
}

/** Validate a schedule; throws with the reason. */
export function normalizeSchedule(s: ScheduleConfig): NormalSchedule {
  if (s.timezone) assertZone(s.timezone)
  if (s.only_between) parseWindow(s.only_between)
  if (s.not_on) parseDays(s.not_on)
  if (s.every !== undefined) {
    const intervalMs = parseDuration(s.every)
    if (intervalMs <= 0) throw new Error('every must be longer than 0')
    return {kind: 'every', intervalMs, spec: `every ${s.every}`}
  }
  if (s.cron !== undefined) {
    const fields = s.cron.trim().split(/\s+/)
    if (fields.length !== 5) throw new Error(`cron must have 5 fields (minute hour day month weekday), got ${fields.length}`)
    const cron = new Cron(s.cron, {timezone: s.timezone, paused: true})
    return {kind: 'cron', cron, spec: `cron ${s.cron}${s.timezone ? ` ${s.timezone}` : ''}`}
  }
  if (s.at !== undefined) {
    if (!/T|\s/.test(s.at) || !/(Z|[+-]\d{2}:?\d{2})$/i.test(s.at))
      throw new Error(`at must be RFC 3339 with a zone, e.g. 2026-12-01T09:00:00Z (got "${s.at}")`)
    const d = parseTs(s.at)
    if (!d) throw new Error(`at is not a valid RFC 3339 time: "${s.at}"`)
    return {kind: 'at', atMs: d.getTime(), spec: `at ${s.at}`}
  }
  if (s.after !== undefined) return {kind: 'after', afterMs: parseDuration(s.after), spec: `after ${s.after}`}
  throw new Error('no every, cron, at or after')
}
