import assert from 'node:assert/strict'
import {MessageChannel, Worker} from 'node:worker_threads'
import {after, describe, it} from 'node:test'

import {callThread} from '../../src/schema/postgres.js'

/**
 * The synchronous call into the PostgreSQL connection's thread (PgBridge), against a real thread that
 * answers as pg-thread.js does (post the answer, set the flag, notify) but can be made to notify late.
 */

// Answers every request with its number. With `late`, answer 1's wake comes a second time once the caller
// has posted request 2 and waits for it, as a notify of the thread's that lands after the caller, having
// seen the flag set, read the answer and begun its next call: a wake that belongs to an answer already read.
const THREAD = `
const {workerData} = require('node:worker_threads')
const {port, late} = workerData
const flag = new Int32Array(workerData.flag)
const nap = new Int32Array(new SharedArrayBuffer(4))
let n = 0
port.on('message', () => {
  n++
  port.postMessage({n})
  Atomics.store(flag, 0, 1)
  Atomics.notify(flag, 0)
  if (late && n === 1) {
    while (Atomics.load(flag, 0) !== 0) Atomics.wait(nap, 0, 0, 1)
    while (Atomics.notify(flag, 0) === 0) Atomics.wait(nap, 0, 0, 1)
  }
})
`

function thread(late: boolean) {
  const {port1, port2} = new MessageChannel()
  const flag = new SharedArrayBuffer(4)
  const worker = new Worker(THREAD, {eval: true, workerData: {port: port2, flag, late}, transferList: [port2]})
  return {worker, call: () => callThread(port1, new Int32Array(flag), {op: 'query'}, 10_000) as {n: number}}
}

describe('PgBridge: a call waits for its own answer', () => {
  const workers: Worker[] = []
  after(() => Promise.all(workers.map((w) => w.terminate())))

  it('answers in order', () => {
    const t = thread(false)
    workers.push(t.worker)
    assert.deepEqual([t.call().n, t.call().n, t.call().n], [1, 2, 3])
  })

  it("a late wake from the previous answer is not taken for this call's answer", () => {
    // Before the fix the second call woke on answer 1's notify, found no message and threw "answered
    // nothing"; answer 2 then waited in the port and every later call read the one before it.
    const t = thread(true)
    workers.push(t.worker)
    assert.deepEqual([t.call().n, t.call().n, t.call().n], [1, 2, 3])
  })
})
