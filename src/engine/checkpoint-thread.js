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
/**
 * The data_version at which a round left nothing to do (every frame copied, no RESTART due). It changes
 * when another connection (the engine) commits: until then an idle engine's thread does not touch the WAL.
 * @type {unknown}
 */
let settledAt = null

function round() {
  try {
    const version = db.pragma('data_version', {simple: true})
    if (version === settledAt) return
    let r = checkpoint('PASSIVE')
    for (let pass = 1; pass < 8 && !(r.busy === 0 && r.checkpointed >= r.log); pass++) r = checkpoint('PASSIVE')
    const copied = r.busy === 0 && r.checkpointed >= r.log
    // log: the frames since the WAL last restarted. A pass that copied all of them says little: the engine
    // has usually committed again before its next transaction could find nothing left to copy.
    if (r.log < data.restartAfterFrames) {
      settledAt = copied ? version : null
      return
    }
    if (Date.now() < restartAfter) return
    // Readers still in the log after restartWaitMs: it gives up (busy) and the next try waits longer.
    db.pragma(`busy_timeout = ${data.restartWaitMs}`)
    try {
      const busy = checkpoint('RESTART').busy !== 0
      if (busy) {
        restartAfter = Date.now() + backoffMs
        backoffMs = Math.min(backoffMs * 2, 30_000)
      } else backoffMs = 1000
      settledAt = busy ? null : version
      // Rare (once per restartAfterFrames frames, or per back-off step): the engine and tests may watch them.
      post({restart: {busy, at: Date.now()}})
    } finally {
      db.pragma(`busy_timeout = ${data.busyTimeoutMs}`)
    }
  } catch (err) {
    post({error: err instanceof Error ? err.message : String(err)})
  }
}

/** Settled (an idle engine), the thread looks ten times less often: a burst waits at most this long. */
const IDLE_INTERVAL_MS = 10 * data.intervalMs
/** @type {NodeJS.Timeout} */
let timer
const next = () => {
  timer = setTimeout(
    () => {
      round()
      next()
    },
    settledAt === null ? data.intervalMs : IDLE_INTERVAL_MS,
  )
}
next()
port.on('message', (m) => {
  if (m !== 'stop') return
  clearTimeout(timer)
  round()
  db.close()
  post({stopped: true})
})
