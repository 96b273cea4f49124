import {closeSync, openSync, readFileSync, unlinkSync, writeSync} from 'node:fs'
import {hostname} from 'node:os'

import {DuctileError} from '../errors.js'
import {processAlive, processStartTime} from '../lib/proc.js'

/**
 * One engine per database (spec decision 10): a PID lock file `<db path>.pid` holding the PID, the
 * process start time (so a reused PID is not taken for the engine) and the host. A second engine is refused
 * while the holder lives; the lock of a dead holder is taken over.
 */

export interface LockInfo {
  pid: number
  started_at: string | null
  host: string
  db: string
}

export function lockPath(dbPath: string): string {
  return `${dbPath}.pid`
}

export function readLock(dbPath: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(lockPath(dbPath), 'utf8')) as LockInfo
    return typeof info.pid === 'number' ? info : null
  } catch {
    return null
  }
}

/** The lock's holder when it is alive on this host; null when there is no lock or it is stale. */
export function liveLockHolder(dbPath: string): LockInfo | null {
  const info = readLock(dbPath)
  if (!info) return null
  if (info.host !== hostname()) return info // another host: cannot check, assume alive
  return processAlive(info.pid, info.started_at) ? info : null
}

export class EngineLock {
  readonly path: string
  private readonly info: LockInfo

  private constructor(path: string, info: LockInfo) {
    this.path = path
    this.info = info
  }

  static acquire(dbPath: string): EngineLock {
    const path = lockPath(dbPath)
    const info: LockInfo = {pid: process.pid, started_at: processStartTime(process.pid), host: hostname(), db: dbPath}
    for (let tries = 0; tries < 2; tries++) {
      try {
        const fd = openSync(path, 'wx', 0o600)
        writeSync(fd, JSON.stringify(info) + '\n')
        closeSync(fd)
        return new EngineLock(path, info)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new DuctileError('runtime', `cannot create the engine lock ${path}: ${(e as Error).message}`, {hint: 'check the permissions of the database directory'})
        }
        const holder = liveLockHolder(dbPath)
        if (holder) {
          throw new DuctileError('engine_running', `another engine (PID ${holder.pid} on ${holder.host}) is already running on ${dbPath}`, {
            hint: `stop it first (kill ${holder.pid}); the lock is ${path}`,
          })
        }
        // Stale: its holder is gone. Remove it and try once more (a racing engine may win; then we refuse).
        try {
          unlinkSync(path)
        } catch {
          // someone else removed it
        }
      }
    }
    const holder = readLock(dbPath)
    throw new DuctileError('engine_running', `another engine${holder ? ` (PID ${holder.pid})` : ''} took the lock ${path} first`, {hint: 'only one engine may run per database'})
  }

  release(): void {
    try {
      const now = readLock(this.info.db)
      if (now && now.pid === this.info.pid) unlinkSync(this.path)
    } catch {
      // already gone
    }
  }
}
