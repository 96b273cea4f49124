import {Flags} from '@oclif/core'

import {errorMessage, usageError} from '../errors.js'
import {JOB_STATUSES, type JobStatus} from '../schema/definition.js'
import {parseDuration, parseTs} from '../schema/time.js'

/** Flags every command parses the same way: durations, instants, limits, statuses. */

/** Longer than this reaches before any timestamp a database holds (and past what a Date can say). */
export const MAX_FLAG_DURATION_MS = 100 * 365 * 86_400_000

export const durationFlag = Flags.custom<number>({
  parse: async (input) => {
    let ms: number
    try {
      ms = parseDuration(input)
    } catch (err) {
      throw usageError(errorMessage(err))
    }
    if (ms > MAX_FLAG_DURATION_MS) throw usageError(`duration "${input}" is longer than 100 years`, 'use a shorter duration, e.g. 30d or 52w')
    return ms
  },
  helpValue: '<90s|15m|24h|7d|2w>',
})

/** A moment: a UTC date or time, or a duration ago (`2h`: two hours before now). */
export const instantFlag = Flags.custom<Date>({
  parse: async (input) => {
    const d = parseTs(input)
    if (d) return d
    let ago: number | null = null
    try {
      ago = /^\d+(\.\d+)?\s*[a-z]+$/i.test(input.trim()) ? parseDuration(input.trim()) : null
    } catch {
      ago = null
    }
    if (ago === null || !(ago <= MAX_FLAG_DURATION_MS))
      throw usageError(`invalid instant "${input}": use 2026-11-27, 2026-11-27T10:00:00Z, "2026-11-27 10:00:00" or a duration ago such as 2h`)
    return new Date(Date.now() - ago)
  },
  helpValue: '<2026-11-27|2026-11-27T10:00:00Z|2h>',
})

export function limitFlag(defaultValue: number, max = 10_000) {
  return Flags.integer({description: `maximum rows (1–${max})`, default: defaultValue, min: 1, max})
}

/** `--status` with the original's aliases (pending→queued, ok→succeeded, error→failed). */
export const STATUS_ALIASES: Record<string, JobStatus> = {pending: 'queued', ok: 'succeeded', error: 'failed'}

const isJobStatus = (s: string): s is JobStatus => (JOB_STATUSES as readonly string[]).includes(s)

export const statusFlag = Flags.custom<JobStatus>({
  parse: async (input) => {
    const s = STATUS_ALIASES[input] ?? input
    if (!isJobStatus(s)) throw usageError(`unknown status "${input}"`, `allowed: ${JOB_STATUSES.join(', ')} (aliases: pending, ok, error)`)
    return s
  },
  helpValue: `<${JOB_STATUSES.join('|')}>`,
})
