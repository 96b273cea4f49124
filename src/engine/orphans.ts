import {createHash} from 'node:crypto'
import {readFileSync, readdirSync} from 'node:fs'

/**
 * Finding what a dead engine left running, without a recorded PID.
 *
 * A plugin's PID reaches the database after the plugin has started, so an engine killed in between leaves a
 * plugin nobody can find by its row. Instead every process the engine starts carries a marker in its
 * environment from its first instruction: `DUCTILE_RUN=<key of the database>` for plugins (their children
 * inherit it), `DUCTILE_SPAWNER=<key>` for the spawn helper. A new engine, holding the lock, reads
 * /proc/<pid>/environ of every process it may signal and kills the marked ones: the helper first (so it
 * starts nothing more), then each plugin's process group, until a pass finds none.
 *
 * Linux only (/proc); processes of other users cannot be read (and were not started by this engine's user).
 */

export const RUN_MARKER = 'DUCTILE_RUN'
export const SPAWNER_MARKER = 'DUCTILE_SPAWNER'

/** The key of a database in markers: the hash of its real path (one engine per file, however it is named). */
export function dbKey(realDbPath: string): string {
  return createHash('sha256').update(realDbPath).digest('hex').slice(0, 24)
}

interface Marked {
  pid: number
  pgrp: number
}

/** Processes whose environment holds `NAME=value`, other than this process. */
export function findMarked(name: string, value: string): Marked[] {
  const needle = Buffer.from(`${name}=${value}\0`)
  const out: Marked[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return out
  }
  for (const e of entries) {
    const pid = Number(e)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    let env: Buffer
    try {
      env = readFileSync(`/proc/${pid}/environ`)
    } catch {
      continue
    }
    // The first variable has no NUL before it.
    if (!(env.subarray(0, needle.length).equals(needle) || env.includes(Buffer.concat([Buffer.from('\0'), needle])))) continue
    out.push({pid, pgrp: processGroup(pid) ?? pid})
  }
  return out
}

function processGroup(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const pgrp = Number(fields[2])
    return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : null
  } catch {
    return null
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone already
  }
}

/**
 * SIGKILL every process a previous engine of this database left: its spawn helper, then every marked
 * plugin with its process group (never this process's own group). Repeats until a pass finds none, so a
 * plugin a dying helper was still starting is found too. Returns the PIDs killed.
 */
export function killLeftovers(key: string, maxPasses = 20): number[] {
  const killed: number[] = []
  const ownGroup = processGroup(process.pid)
  for (const h of findMarked(SPAWNER_MARKER, key)) {
    kill(h.pid)
    killed.push(h.pid)
  }
  for (let pass = 0; pass < maxPasses; pass++) {
    const found = findMarked(RUN_MARKER, key)
    if (found.length === 0) break
    for (const m of found) {
      if (m.pgrp !== ownGroup && m.pgrp > 1) {
        try {
          process.kill(-m.pgrp, 'SIGKILL')
        } catch {
          // the group is gone
        }
      }
      kill(m.pid)
      if (!killed.includes(m.pid)) killed.push(m.pid)
    }
  }
  return killed
}
