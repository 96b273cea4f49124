import {readFileSync, readlinkSync} from 'node:fs'

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

/** State letter, parent and start time of a process from /proc, or null (no /proc, or the process is gone). */
function readStat(pid: number): {state: string; ppid: number; startedAt: string | null} | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    const boot = bootTime()
    return {
      state: fields[0] ?? '?',
      ppid: Number(fields[1]),
      startedAt: boot === null || !Number.isFinite(ticks) ? null : formatTs(new Date(boot + (ticks * 1000) / CLOCK_TICKS_PER_SECOND)),
    }
  } catch {
    return null
  }
}

/** The PID of a process's parent, or null (no /proc, or the process is gone). */
export function parentPid(pid: number): number | null {
  return readStat(pid)?.ppid ?? null
}

/** Start time of a process as a stored timestamp, or null when unknown (no /proc, or the process is gone). */
export function processStartTime(pid: number): string | null {
  return readStat(pid)?.startedAt ?? null
}

/**
 * Is this PID alive (and, when a start time was recorded, still the same process)? A zombie is not: it has
 * exited, and under a PID 1 that does not reap (some containers) it would otherwise look alive forever.
 */
/** This process's PID namespace (`pid:[4026531836]`), or null where /proc does not say. */
export function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return null
  }
}

export function processAlive(pid: number | null | undefined, startedAt?: string | null): boolean {
  if (!pid || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const stat = readStat(pid)
  if (stat && (stat.state === 'Z' || stat.state === 'X')) return false
  if (!startedAt || !stat?.startedAt) return true
  const a = parseTs(stat.startedAt)?.getTime() ?? 0
  const b = parseTs(startedAt)?.getTime() ?? 0
  return Math.abs(a - b) <= 1500
}
