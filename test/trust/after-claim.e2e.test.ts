import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {enqueue, jobRow, rows, startEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'
import {insertJob} from '../helpers/fixtures.js'
import {runPlugin} from '../../src/engine/runner.js'
import {MAX_PAYLOAD_DEPTH} from '../../src/lib/json.js'
import {lite} from '../helpers/store.js'

const nested = (depth: number) => {
  let v: unknown = {mode: 'ok'}
  for (let i = 0; i < depth; i++) v = {a: v}
  return v
}
const nestedText = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

/** Issue 13.2: whatever fails after a claim ends that attempt; a deep payload is refused at enqueue. */
describe('trust: no job stays running inside a live engine', () => {
  it('a job another process wrote with a 10,000-deep payload fails with the cause; the engine runs on', {timeout: 30_000}, async () => {
    const env = testEnv()
    const deep = insertJob(env.db, {plugin: 'behave', command: 'poll', status: 'queued', payload: nestedText(10_000), max_attempts: 1})
    const engine = await startEngine(env)
    try {
      const job = await waitTerminal(env, deep.id)
      assert.equal(job.status, 'failed')
      const log = rows(env.db, 'SELECT status, last_error FROM job_log WHERE job_id = ?', deep.id)
      assert.equal(log.length, 1)
      assert.match(log[0].last_error, new RegExp(`deeper than ${MAX_PAYLOAD_DEPTH} levels`))
      const next = enqueue(env, 'behave', {mode: 'ok'})
      assert.equal((await waitTerminal(env, next)).status, 'succeeded')
    } finally {
      await engine.stop()
    }
  })

  it('a full disk while recording: the attempt still ends (failed, job_log naming the cause) once it can be written', {timeout: 30_000}, async () => {
    const env = testEnv()
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'behave', {mode: 'sleep_big', seconds: 0.5, kb: 512})
      await waitFor('the job to run', () => jobRow(env.db, id).status === 'running')
      // A real SQLITE_FULL: the engine's connection may not grow the file any more.
      const pages = lite(engine.db).sqlite.pragma('page_count', {simple: true}) as number
      lite(engine.db).sqlite.pragma(`max_page_count = ${pages}`)
      await waitFor(
        'the failure to be recorded or retried',
        () => jobRow(env.db, id).status !== 'running' || env.logs.some((l) => l.includes('could not record a failed attempt yet')),
      )
      lite(engine.db).sqlite.pragma('max_page_count = 1073741823')
      const job = await waitTerminal(env, id)
      assert.equal(job.status, 'failed')
      const log = rows(env.db, 'SELECT status, last_error FROM job_log WHERE job_id = ?', id)
      assert.equal(log.length, 1)
      assert.match(log[0].last_error, /engine error after the claim: .*disk is full/)
      assert.doesNotMatch(env.logs.join('\n'), /crash recovery/)
    } finally {
      await engine.stop()
    }
  })

  it('a request that cannot be encoded starts no process and leaves no timer armed', async () => {
    const before = timers()
    const r = await runPlugin({
      entrypoint: '/bin/true',
      request: {protocol: 2, job_id: 'j', command: 'poll', config: {}, state: {}, context: {}, payload: nested(20_000), deadline_at: '', instance: 'x'},
      env: {},
      timeoutMs: 60_000,
    })
    assert.equal(r.kind, 'spawn_error')
    assert.equal(r.retryable, false)
    assert.equal(r.pid, null)
    assert.match(r.error!, /could not encode the plugin request/)
    assert.equal(timers(), before)
  })

  it(`jobs enqueue refuses a payload deeper than ${MAX_PAYLOAD_DEPTH} levels (exit 2) and writes nothing`, async () => {
    const env = testEnv()
    const deep = await runCli(['jobs', 'enqueue', 'behave', '--db', env.dbPath, '--config', env.configPath, '--payload', nestedText(4100)])
    assert.equal(deep.code, 2, deep.stderr)
    assert.match(deep.stderr, /nests deeper than 64 levels/)
    const ok = await runCli(['jobs', 'enqueue', 'behave', '--db', env.dbPath, '--config', env.configPath, '--payload', nestedText(MAX_PAYLOAD_DEPTH - 1)])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(rows(env.db, 'SELECT id FROM job_queue').length, 1)
  })
})
