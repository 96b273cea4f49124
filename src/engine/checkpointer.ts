import {Worker} from 'node:worker_threads'

import {ownFile} from '../assets.js'

/**
 * Copies the engine's WAL back into the database file on a worker thread with its own connection, so the
 * copy and its two fsyncs no longer stop the engine's event loop between jobs (with SQLite's automatic
 * checkpoint inside every 40th or so COMMIT, that cost the engine 5–9% of its throughput here). The engine's
 * connection runs with wal_autocheckpoint = 0 while this runs.
 *
 * Each round repeats PASSIVE checkpoints until every frame is copied (a few passes: the engine appends
 * while the first one copies), because the WAL only restarts from its beginning when a transaction starts
 * with nothing left to copy. Under a steady stream of commits that moment never comes (the engine commits
 * every millisecond or two, and again while a pass copies and syncs), and the WAL grew without end: 600 MB
 * for 3,000 jobs drained back to back. So once the log holds `restartAfterFrames` frames, the round ends
 * with a RESTART checkpoint: it holds the engine's next commit off while it copies the last frames and waits (at most
 * `restartWaitMs`) for readers to leave the log, and the engine's next transaction writes from its start.
 * It needs the write lock free for a moment within that wait, which the engine leaves between commits; a
 * writer that never lets go (none of ours) would only make it give up. While a reader stays in the log (a
 * long query, a backup) no RESTART can finish, and each try holds the engine's commits off for up to
 * restartWaitMs: after one that gives up, the next waits 1 s, then 2, 4 … up to 30 s.
 */

/** What the checkpoint thread (checkpoint-thread.js) is given. */
export interface ThreadData {
  dbPath: string
  intervalMs: number
  busyTimeoutMs: number
  restartAfterFrames: number
  restartWaitMs: number
}

/** What it sends back. */
export type ThreadMessage = {error: string} | {restart: {busy: boolean; at: number}} | {stopped: true}

/** The thread runs checkpoint-thread.js, a plain JavaScript file found by src/assets.ts (src/ or dist/). */
function startThread(workerData: ThreadData): Worker {
  // No flags of this process (a loader under tsx would cost the thread 90 ms to start, for nothing).
  return new Worker(ownFile('engine/checkpoint-thread.js'), {workerData, execArgv: []})
}

/** 4,096 frames: 16 MiB of WAL at the default 4 KiB page, four times SQLite's own automatic checkpoint. */
export const RESTART_AFTER_FRAMES = 4096

export class Checkpointer {
  private readonly worker: Worker
  private stopped: Promise<void> | null = null
  private exited = false

  /** `onError` hears about a failed round or a dead worker (the engine then checkpoints itself again). */
  constructor(
    dbPath: string,
    opts: {
      intervalMs?: number
      busyTimeoutMs?: number
      restartAfterFrames?: number
      restartWaitMs?: number
      onError: (message: string) => void
      /** Each RESTART try: busy when a reader in the log made it give up; `at` is the thread's clock. */
      onRestart?: (r: {busy: boolean; at: number}) => void
    },
  ) {
    const data: ThreadData = {
      dbPath,
      intervalMs: opts.intervalMs ?? 100,
      busyTimeoutMs: opts.busyTimeoutMs ?? 5000,
      restartAfterFrames: opts.restartAfterFrames ?? RESTART_AFTER_FRAMES,
      restartWaitMs: opts.restartWaitMs ?? 100,
    }
    this.worker = startThread(data)
    // Never what keeps the engine's process alive.
    this.worker.unref()
    // The first failure ends the thread: the engine goes back to checkpointing in its commits.
    let reported = false
    const fail = (message: string) => {
      if (reported || this.stopped) return
      reported = true
      opts.onError(message)
      void this.stop()
    }
    this.worker.on('message', (m: ThreadMessage) => {
      if ('error' in m) fail(m.error)
      else if ('restart' in m) opts.onRestart?.(m.restart)
    })
    this.worker.on('error', (err) => fail(err instanceof Error && err.message ? err.message : `the checkpoint thread failed: ${JSON.stringify(err)}`))
    this.worker.on('exit', (code) => {
      this.exited = true
      fail(`the checkpoint thread exited (${code})`)
    })
  }

  /** One last round, then the thread ends. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve()
      const timer = setTimeout(() => done(), 2000)
      const done = () => {
        clearTimeout(timer)
        void this.worker.terminate().then(() => resolve())
      }
      this.worker.on('message', (m: ThreadMessage) => 'stopped' in m && done())
      this.worker.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      this.worker.postMessage('stop')
    })
    return this.stopped
  }
}
