import Database from 'better-sqlite3'
import {parentPort, workerData} from 'node:worker_threads'

/**
 * The checkpoint thread's body (see checkpointer.ts for why it exists and how it behaves). It runs on its own
 * connection and imports only better-sqlite3, so the thread starts in a few milliseconds.
 */

export interface ThreadData {
  dbPath: string
  intervalMs: number
  busyTimeoutMs: number
  restartAfterFrames: number
  restartWaitMs: number
}

export type ThreadMessage = {error: string} | {restart: {busy: boolean; at: number}} | {stopped: true}

interface CheckpointRow {
  busy: number
  log: number
  checkpointed: number
}

const data = workerData as ThreadData
const port = parentPort
if (!port) throw new Error('checkpoint-thread runs as a worker thread')
const post = (m: ThreadMessage) => port.postMessage(m)

let db: Database.Database
try {
  db = new Database(data.dbPath, {fileMustExist: true, timeout: data.busyTimeoutMs})
  db.pragma('synchronous = NORMAL')
} catch (err) {
  // Reported here: an error that ends the thread reaches the engine without its message.
  post({error: `cannot open ${data.dbPath}: ${err instanceof Error ? err.message : String(err)}`})
  process.exit(1)
}

const checkpoint = (mode: 'PASSIVE' | 'RESTART'): CheckpointRow =>
  (db.pragma(`wal_checkpoint(${mode})`) as CheckpointRow[])[0] ?? {busy: 0, log: 0, checkpointed: 0}

let restartAfter = 0
let backoffMs = 1000

function round(): void {
  try {
    let r = checkpoint('PASSIVE')
    for (let pass = 1; pass < 8 && !(r.busy === 0 && r.checkpointed >= r.log); pass++) r = checkpoint('PASSIVE')
    // log: the frames since the WAL last restarted. A pass that copied all of them says little: the engine
    // has usually committed again before its next transaction could find nothing left to copy.
    if (r.log < data.restartAfterFrames || Date.now() < restartAfter) return
    // Readers still in the log after restartWaitMs: it gives up (busy) and the next try waits longer.
    db.pragma(`busy_timeout = ${data.restartWaitMs}`)
    try {
      const busy = checkpoint('RESTART').busy !== 0
      if (busy) {
        restartAfter = Date.now() + backoffMs
        backoffMs = Math.min(backoffMs * 2, 30_000)
      } else backoffMs = 1000
      // Rare (once per restartAfterFrames frames, or per back-off step): the engine and tests may watch them.
      post({restart: {busy, at: Date.now()}})
    } finally {
      db.pragma(`busy_timeout = ${data.busyTimeoutMs}`)
    }
  } catch (err) {
    post({error: err instanceof Error ? err.message : String(err)})
  }
}

const timer = setInterval(round, data.intervalMs)
port.on('message', (m: unknown) => {
  if (m !== 'stop') return
  clearInterval(timer)
  round()
  db.close()
  post({stopped: true})
})
