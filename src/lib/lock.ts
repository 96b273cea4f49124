import {isPgUrl} from '../schema/pg-url.js'
import {closeSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync} from 'node:fs'
import {hostname} from 'node:os'
import {basename, dirname, join, resolve} from 'node:path'

import {DuctileError, errorMessage} from '../errors.js'
import {processAlive, processStartTime} from './proc.js'

/**
 * One engine per database: a PID lock file `<db path>.pid` holding the PID, the
 * process start time (so a reused PID is not taken for the engine) and the host. A second engine is refused
 * while the holder lives; the lock of a dead holder is taken over.
 */

export interface LockInfo {
  pid: number
  started_at: string | null
  host: string
  db: string
}

/**
 * The real path of a database: symlinks of the file and of its directories resolved, so one file has one
 * lock (and one orphan marker) whatever path names it. A file that does not exist yet: its directory's.
 */
export function realDbPath(dbPath: string): string {
  const abs = resolve(dbPath)
  try {
    return realpathSync(abs)
  } catch {
    try {
      return join(realpathSync(dirname(abs)), basename(abs))
    } catch {
      return abs
    }
  }
}

export function lockPath(dbPath: string): string {
  return `${realDbPath(dbPath)}.pid`
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
    const info: LockInfo = {pid: process.pid, started_at: processStartTime(process.pid), host: hostname(), db: realDbPath(dbPath)}
    for (let tries = 0; tries < 2; tries++) {
      try {
        const fd = openSync(path, 'wx', 0o600)
        try {
          writeSync(fd, `${JSON.stringify(info)}\n`)
        } catch (e) {
          // A lock we could not write (ENOSPC) is no lock: leave no empty file behind.
          closeSync(fd)
          unlinkSync(path)
          throw e
        }
        closeSync(fd)
        return new EngineLock(path, info)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code !== 'EEXIST') {
          const hint =
            code === 'ENOSPC' || code === 'EDQUOT'
              ? `the disk holding ${dirname(path)} is full: free space there, then start the engine again`
              : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
                ? `this user cannot create files in ${dirname(path)}: check the permissions of the database directory`
                : `check that ${dirname(path)} exists and is writable`
          throw new DuctileError('runtime', `cannot create the engine lock ${path}: ${errorMessage(e)}`, {hint})
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
    throw new DuctileError('engine_running', `another engine${holder ? ` (PID ${holder.pid})` : ''} took the lock ${path} first`, {
      hint: 'only one engine may run per database',
    })
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

/**
 * The signal that tells a database's engine a job was committed by another process (a CLI, a script of
 * ours): it claims at once instead of at its next poll. SIGURG because its default action is to ignore
 * it, so a signal that reaches another process (the lock's PID reused) does that process no harm.
 */
export const WAKE_SIGNAL = 'SIGURG'

/**
 * Wake the engine of a database after a commit that queued work. Best effort and cheap (the lock file,
 * one /proc read, one kill): no engine, an engine on another host or of another user (EPERM) is left to
 * its poll. Returns whether a signal was sent.
 */
export function wakeEngine(dbPath: string): boolean {
  // PostgreSQL: the enqueue's NOTIFY woke every engine at its commit.
  if (isPgUrl(dbPath)) return false
  const holder = liveLockHolder(dbPath)
  if (!holder || holder.host !== hostname()) return false
  try {
    process.kill(holder.pid, WAKE_SIGNAL)
    return true
  } catch {
    return false
  }
}
