import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {PollGate} from '../../src/engine/poll.js'

const T = 1_000_000
const poll = (at: number, othersCommitted = false) => ({woken: false, othersCommitted, at})

describe('PollGate: when a poll claims', () => {
  it('a wake, or another process committing, always claims', () => {
    const g = new PollGate(5000)
    g.claimed({woken: false, empty: true, at: T, nextRetryAt: () => null})
    assert.equal(g.shouldClaim(poll(T + 1)), false)
    assert.equal(g.shouldClaim({woken: true, othersCommitted: false, at: T + 1}), true)
    assert.equal(g.shouldClaim(poll(T + 1, true)), true)
  })

  it('after a poll found nothing runnable: quiet until the next retry is due', () => {
    const g = new PollGate(5000)
    g.claimed({woken: false, empty: true, at: T, nextRetryAt: () => T + 1000})
    assert.equal(g.shouldClaim(poll(T + 999)), false)
    assert.equal(g.shouldClaim(poll(T + 1000)), true)
  })

  it('with no retry waiting: quiet for at most quietMaxMs', () => {
    const g = new PollGate(5000)
    g.claimed({woken: false, empty: true, at: T, nextRetryAt: () => T + 60_000})
    assert.equal(g.shouldClaim(poll(T + 4999)), false)
    assert.equal(g.shouldClaim(poll(T + 5000)), true)
  })

  it("a wake's pass asks nothing (one per job) and leaves the next poll to look", () => {
    const g = new PollGate(5000)
    let asked = 0
    g.claimed({woken: true, empty: true, at: T, nextRetryAt: () => ++asked})
    assert.equal(asked, 0)
    assert.equal(g.shouldClaim(poll(T)), true)
  })

  it('a pass that claimed a job, or failed, makes the next poll claim', () => {
    const g = new PollGate(5000)
    g.claimed({woken: false, empty: true, at: T, nextRetryAt: () => null})
    g.claimed({woken: false, empty: false, at: T, nextRetryAt: () => null})
    assert.equal(g.shouldClaim(poll(T)), true)
    g.claimed({woken: false, empty: true, at: T, nextRetryAt: () => null})
    g.failed()
    assert.equal(g.shouldClaim(poll(T)), true)
  })
})
