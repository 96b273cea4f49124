// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {nextBreaker} from '../../src/engine/breakers.js'
import type {CircuitBreaker} from '../../src/schema/types.js'

const NOW = '2026-11-27 10:00:00.000'
const closed: CircuitBreaker = {
  plugin: 'p',
  command: 'poll',
  state: 'closed',
  failure_count: 0,
  opened_at: null,
  last_failure_at: null,
  last_job_id: null,
  updated_at: NOW,
}
const fail = (id: string) => ({id, status: 'failed', completed_at: `2026-11-27 09:0${id}:00.000`})

describe('circuit breakers, decided without a database', () => {
  it('opens on the threshold-th failure in a row, with one transition', () => {
    let b = closed
    const reasons: (string | null)[] = []
    for (const id of ['1', '2', '3']) {
      const r = nextBreaker(b, fail(id), 3, NOW)
      reasons.push(r.reason)
      b = r.next
    }
    assert.deepEqual(reasons, [null, null, 'failure_threshold'])
    assert.equal(b.state, 'open')
    assert.equal(b.failure_count, 3)
    assert.equal(b.opened_at, '2026-11-27 09:03:00.000')
    assert.equal(b.last_job_id, '3')
    const again = nextBreaker(b, fail('4'), 3, NOW)
    assert.equal(again.next.state, 'open')
    assert.equal(again.reason, null, 'an open breaker that fails again changes nothing worth a transition')
  })

  it('a success closes it and forgets the failures; a closed breaker that succeeds records no transition', () => {
    const open: CircuitBreaker = {...closed, state: 'half_open', failure_count: 3, opened_at: NOW, last_failure_at: NOW}
    const r = nextBreaker(open, {id: '9', status: 'succeeded', completed_at: NOW}, 3, NOW)
    assert.deepEqual([r.next.state, r.next.failure_count, r.next.opened_at, r.next.last_failure_at, r.reason], ['closed', 0, null, null, 'success'])
    assert.equal(nextBreaker(closed, {id: '10', status: 'succeeded', completed_at: NOW}, 3, NOW).reason, null)
  })

  it('timeouts and dead jobs count as failures', () => {
    const r1 = nextBreaker(closed, {id: '1', status: 'timed_out', completed_at: NOW}, 2, NOW)
    const r2 = nextBreaker(r1.next, {id: '2', status: 'dead', completed_at: NOW}, 2, NOW)
    assert.equal(r2.next.state, 'open')
  })
})
