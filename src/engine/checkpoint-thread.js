// @ts-check
import Database from 'better-sqlite3'
import {parentPort, workerData} from 'node:worker_threads'

/**
 * The checkpoint thread's body (see checkpointer.ts for why it exists and how it behaves). Plain JavaScript,
 * type-checked by tsc through JSDoc: a worker thread loads it by path, from the sources as from dist/, with
 * no TypeScript loader (one took 150 ms per engine start). It imports only better-sqlite3.
 *
 * @typedef {import('./checkpointer.js').ThreadData} ThreadData
 * @typedef {import('./checkpointer.js').ThreadMessage} ThreadMessage
 * @typedef {{busy: number, log: number, checkpointed: number}} CheckpointRow
 */

const data = /** @type {ThreadData} */ (workerData)
const port = parentPort
if (!port) throw new Error('checkpoint-thread runs as a worker thread')
/** @param {ThreadMessage} m */
const post = (m) => port.postMessage(m)

/** @type {Database.Database} */
let db
try {
  db = new Database(data.dbPath, {fileMustExist: true, timeout: data.busyTimeoutMs})
  db.pragma('synchronous = NORMAL')
} catch (err) {
  // Reported here: an error that ends the thread reaches the engine without its message.
  post({error: `cannot open ${data.dbPath}: ${err instanceof Error ? err.message : String(err)}`})
  process.exit(1)
}

/**
 * @param {'PASSIVE' | 'RESTART'} mode
 * @returns {CheckpointRow}
 */
const checkpoint = (mode) => /** @type {CheckpointRow[]} */ (db.pragma(`wal_checkpoint(${mode})`))[0] ?? {busy: 0, log: 0, checkpointed: 0}

let restartAfter = 0
let backoffMs = 1000

function round() {
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
port.on('message', (m) => {
  if (m !== 'stop') return
  clearInterval(timer)
  round()
  db.close()
  post({stopped: true})
})
