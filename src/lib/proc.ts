import {readFileSync} from 'node:fs'

import {formatTs, parseTs} from '../schema/time.js'

/**
 * Process liveness for orphan detection. A PID alone is not enough (PIDs are reused), so the start time of
 * the process is recorded with it and compared on the way back. Linux reads /proc; elsewhere only the PID
 * is checked.
 */

let bootTimeMs: number | null | undefined

function bootTime(): number | null {
  if (bootTimeMs !== undefined) return bootTimeMs
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))
    bootTimeMs = m ? Number(m[1]) * 1000 : null
  } catch {
    bootTimeMs = null
  }
  return bootTimeMs
}

const CLOCK_TICKS_PER_SECOND = 100

/** Start time of a process as a stored timestamp, or null when unknown (no /proc, or the process is gone). */
export function processStartTime(pid: number): string | null {
  const boot = bootTime()
  if (boot === null) return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    if (!Number.isFinite(ticks)) return null
    return formatTs(new Date(boot + (ticks * 1000) / CLOCK_TICKS_PER_SECOND))
  } catch {
    return null
  }
}

/** Is this PID alive (and, when a start time was recorded, still the same process)? */
export function processAlive(pid: number | null | undefined, startedAt?: string | null): boolean {
  if (!pid || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (!startedAt) return true
  const now = processStartTime(pid)
  if (now === null) return true
  const a = parseTs(now)?.getTime() ?? 0
  const b = parseTs(startedAt)?.getTime() ?? 0
  return Math.abs(a - b) <= 1500
}
