import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {describe, it} from 'node:test'

import {parentPid, processAlive, processStartTime} from '../../src/lib/proc.js'
import {waitFor} from '../helpers/engine.js'

describe('processAlive', () => {
  it('a live process is alive, with its start time; a different start time means a reused PID', () => {
    const started = processStartTime(process.pid)
    assert.ok(started)
    assert.equal(processAlive(process.pid), true)
    assert.equal(processAlive(process.pid, started), true)
    assert.equal(processAlive(process.pid, '2001-01-01T00:00:00.000Z'), false)
    assert.equal(processAlive(null), false)
  })

  it('a zombie (exited, never reaped by its parent) is not alive', async () => {
    // The background sleep's parent execs a long sleep that never reaps it: it stays a zombie.
    const holder = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30'], {stdio: ['ignore', 'pipe', 'ignore']})
    try {
      const [chunk] = (await once(holder.stdout!, 'data')) as [Buffer]
      const zombie = Number(chunk.toString().trim())
      await waitFor('the child to exit', () => !processAlive(zombie), 5000)
      assert.equal(processAlive(holder.pid), true, 'its parent still runs')
      assert.equal(parentPid(zombie), holder.pid)
      assert.doesNotThrow(() => process.kill(zombie, 0), 'the PID still exists, as a zombie')
    } finally {
      holder.kill('SIGKILL')
    }
  })
})
