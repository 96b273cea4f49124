import {parseDuration} from '../schema/time.js'
import {errorMessage} from '../errors.js'
import {isMap} from '../lib/json.js'
import {type LoadState, err} from './read.js'
import {type ScheduleConfig, normalizeSchedule} from './schedule.js'

/** Checking values of the read document: each helper records an error at its key path and returns the default. */

export function durationAt(st: LoadState, file: string, path: string, v: unknown, def: number): number {
  if (v === undefined || v === null || v === '') return def
  try {
    return parseDuration(v as string | number)
  } catch (e) {
    err(st, file, path, errorMessage(e))
    return def
  }
}

/** A duration that must be more than zero (a timeout, a backoff): 0s would fire at once or retry in a loop. */
export function positiveDurationAt(st: LoadState, file: string, path: string, v: unknown, def: number): number {
  const ms = durationAt(st, file, path, v, def)
  if (ms <= 0) {
    err(st, file, path, `must be more than 0 (got ${JSON.stringify(v)})`)
    return def
  }
  return ms
}

export function intAt(st: LoadState, file: string, path: string, v: unknown, def: number, min: number): number {
  if (v === undefined || v === null) return def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    err(st, file, path, `must be a whole number ≥ ${min} (got ${JSON.stringify(v)})`)
    return def
  }
  return v
}

export function oneOf<T extends string>(st: LoadState, file: string, path: string, v: unknown, allowed: readonly T[], def: T): T {
  if (v === undefined || v === null) return def
  if (!allowed.includes(v as T)) {
    err(st, file, path, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`)
    return def
  }
  return v as T
}

export function parseSchedules(st: LoadState, file: string, plugin: string, raw: unknown): ScheduleConfig[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) {
    err(st, file, `plugins.${plugin}.schedules`, 'schedules must be a list')
    return []
  }
  const seen = new Set<string>()
  const out: ScheduleConfig[] = []
  raw.forEach((s, i) => {
    const path = `plugins.${plugin}.schedules[${i}]`
    if (!isMap(s)) {
      err(st, file, path, 'a schedule must be a mapping')
      return
    }
    const id = s.id === undefined ? 'default' : String(s.id)
    if (seen.has(id)) err(st, file, `${path}.id`, `duplicate schedule id "${id}" for plugin ${plugin} (ids must be unique per plugin)`)
    seen.add(id)
    const command = s.command === undefined ? 'poll' : String(s.command)
    const payload = s.payload === undefined ? {} : s.payload
    if (!isMap(payload)) err(st, file, `${path}.payload`, 'payload must be a mapping')
    const catchUp = oneOf(st, file, `${path}.catch_up`, s.catch_up, ['skip', 'run_once', 'run_all'] as const, 'skip')
    const scheduleProblem = (key: string, message: string) => st.issues.push({severity: 'error', file, path: `${path}${key}`, message, scope: 'schedule'})
    const kinds = (['every', 'cron', 'at', 'after'] as const).filter((k) => s[k] !== undefined)
    if (kinds.length !== 1) scheduleProblem('', `exactly one of every, cron, at, after is required (got ${kinds.length ? kinds.join(', ') : 'none'})`)
    if (command === 'handle') scheduleProblem('.command', 'handle cannot be scheduled: it needs an event')
    if (catchUp !== 'skip' && s.every === undefined) scheduleProblem('.catch_up', 'catch_up other than skip needs an every schedule')
    const sc: ScheduleConfig = {
      id,
      every: s.every === undefined ? undefined : String(s.every),
      cron: s.cron === undefined ? undefined : String(s.cron),
      at: s.at === undefined ? undefined : String(s.at),
      after: s.after === undefined ? undefined : String(s.after),
      jitter_ms: durationAt(st, file, `${path}.jitter`, s.jitter, 0),
      catch_up: catchUp,
      if_running: oneOf(st, file, `${path}.if_running`, s.if_running, ['skip', 'queue', 'cancel'] as const, 'skip'),
      only_between: s.only_between === undefined ? undefined : String(s.only_between),
      not_on: s.not_on === undefined ? undefined : Array.isArray(s.not_on) ? (s.not_on as (string | number)[]) : [s.not_on as string],
      timezone: s.timezone === undefined ? undefined : String(s.timezone),
      command,
      payload: isMap(payload) ? payload : {},
    }
    if (kinds.length === 1) {
      try {
        normalizeSchedule(sc)
      } catch (e) {
        scheduleProblem(`.${kinds[0]}`, errorMessage(e))
      }
    }
    out.push(sc)
  })
  return out
}
