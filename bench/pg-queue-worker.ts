/**
 * One "engine" of the PostgreSQL queue-overhead bench (bench/postgres.ts): the engine's queue code without a
 * subprocess, in its steady state: one transaction per job writes the attempt's completion, claims the next
 * job, then writes its fact and state, as the worker loop does. Prints "ready", starts on a line on stdin, exits when
 * the queue has nothing left to claim, printing how many jobs it finished.
 *   node --import tsx bench/pg-queue-worker.ts URL
 */
import {once} from 'node:events'

import {claimNextJob, completeAttempt} from '../src/queries/queue.js'
import {applyStateUpdates} from '../src/queries/state.js'
import {uuidv7} from '../src/schema/ids.js'
import {openStore} from '../src/schema/open.js'
import {formatTs} from '../src/schema/time.js'

const db = openStore(process.argv[2] ?? '', {mode: 'write'})
const engineId = uuidv7()
const claim = () => {
  const now = formatTs(new Date())
  return claimNextJob(db, {now, excludePlugins: new Set(), snapshotId: null, enginePid: process.pid, engineId})
}
process.stdout.write('ready\n')
await once(process.stdin, 'data')
let done = 0
let job = db.tx(claim)
while (job) {
  const current = job
  job = db.tx(() => {
    const now = formatTs(new Date())
    completeAttempt(db, current, {status: 'succeeded', result: '{"status":"ok","result":"x"}', lastError: null, stderr: '', now})
    const next = claim()
    applyStateUpdates(db, {plugin: current.plugin, command: 'poll', jobId: current.id, updates: {cursor: current.id}, rules: [{fact_type: 'p.snapshot'}], now})
    return next
  })
  done++
}
db.close()
process.stdout.write(`${done}\n`)
process.exit(0)
