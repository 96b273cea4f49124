import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {decideAbandoned, decideOutcome, retryDelay} from '../../src/engine/outcome.js'
import type {RunResult} from '../../src/engine/runner.js'

const result = (kind: RunResult['kind'], retryable = true, error?: string): Pick<RunResult, 'kind' | 'retryable' | 'error' | 'response'> => ({
  kind,
  retryable,
  error,
  response: kind === 'ok' ? {status: 'ok', result: 1} : undefined,
})
const noJitter = () => 0
const fullJitter = () => 0.999999

describe('the attempt outcome, decided without a process', () => {
  it('a valid ok response succeeds, carrying the response', () => {
    const o = decideOutcome({attempt: 1, max_attempts: 1}, result('ok'), 1000)
    assert.deepEqual(o, {kind: 'succeed', response: {status: 'ok', result: 1}})
  })

  it('a retryable failure runs again while attempts remain, then ends failed', () => {
    assert.deepEqual(decideOutcome({attempt: 1, max_attempts: 3}, result('error', true, 'boom'), 1000, noJitter), {
      kind: 'retry',
      attemptStatus: 'failed',
      error: 'boom',
      delayMs: 1000,
    })
    assert.deepEqual(decideOutcome({attempt: 2, max_attempts: 3}, result('error', true, 'boom'), 1000, noJitter), {
      kind: 'retry',
      attemptStatus: 'failed',
      error: 'boom',
      delayMs: 2000,
    })
    assert.deepEqual(decideOutcome({attempt: 3, max_attempts: 3}, result('error', true, 'boom'), 1000, noJitter), {
      kind: 'end',
      status: 'failed',
      error: 'boom',
    })
  })

  it('a failure the plugin marks final (retry: false, exit 78) ends at once', () => {
    assert.deepEqual(decideOutcome({attempt: 1, max_attempts: 4}, result('error', false, 'bad input'), 1000), {
      kind: 'end',
      status: 'failed',
      error: 'bad input',
    })
  })

  it('a timeout keeps its status, in the retried attempt and at the end', () => {
    const again = decideOutcome({attempt: 1, max_attempts: 2}, result('timeout', true, 'timed out'), 1000, noJitter)
    assert.equal(again.kind, 'retry')
    assert.equal(again.kind === 'retry' && again.attemptStatus, 'timed_out')
    assert.deepEqual(decideOutcome({attempt: 2, max_attempts: 2}, result('timeout', true, 'timed out'), 1000), {
      kind: 'end',
      status: 'timed_out',
      error: 'timed out',
    })
  })

  it('a failure without a message says the plugin failed', () => {
    assert.deepEqual(decideOutcome({attempt: 1, max_attempts: 1}, result('spawn_error', true), 1000), {kind: 'end', status: 'failed', error: 'plugin failed'})
  })

  it('an engine failure after the claim retries whatever the plugin said, while attempts remain', () => {
    assert.equal(decideAbandoned({attempt: 1, max_attempts: 2}, 'disk full', 1000, noJitter).kind, 'retry')
    assert.deepEqual(decideAbandoned({attempt: 2, max_attempts: 2}, 'disk full', 1000), {kind: 'end', status: 'failed', error: 'disk full'})
  })

  it('the retry delay doubles per attempt, with at most a quarter of the base as jitter', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelay(30_000, n, noJitter)),
      [30_000, 60_000, 120_000, 240_000],
    )
    assert.equal(retryDelay(30_000, 1, fullJitter), 30_000 + 7_500)
    assert.equal(retryDelay(30_000, 3, fullJitter), 120_000 + 7_500)
  })
})
