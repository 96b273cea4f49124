// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {ROOT, runCli} from '../helpers/cli.js'
import {assertCitedRowsExist, rows, spawnEngine, testEnv, waitFor} from '../helpers/engine.js'

describe('ductile explain breaker and explain schedule, on a breaker the real engine opened', () => {
  it('open: the failures that counted, the threshold from the snapshot, when it may probe; then an operator reset', async () => {
    const env = testEnv('')
    writeFileSync(
      env.configPath,
      `service:\n  name: e2e\n  tick_interval: 200ms\n${env.state}plugin_roots:\n  - ${join(ROOT, 'test/fixtures/plugins')}\nplugins:\n  behave:\n    retry: {max_attempts: 1}\n    circuit_breaker: {threshold: 3, reset_after: 1h}\n    schedules:\n      - {every: 1s, payload: {mode: error}}\n`,
    )
    const engine = spawnEngine(env.configPath)
    try {
      await waitFor('the breaker to open', () => rows(env.db, `SELECT 1 FROM circuit_breakers WHERE plugin = 'behave' AND state = 'open'`).length, 20_000)
    } finally {
      engine.child.kill('SIGTERM')
      assert.equal(await engine.exited, 0)
    }
    const failed = rows(env.db, `SELECT id FROM job_queue WHERE plugin = 'behave' AND status = 'failed' ORDER BY created_at DESC LIMIT 3`).map((j) => j.id)
    const r = await runCli(['explain', 'breaker', 'behave', '--db', env.dbPath, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const e = r.json()
    assert.equal(e.state, 'open')
    assert.equal(e.threshold, 3)
    assert.equal(e.reset_after_ms, 3_600_000)
    assert.match(
      e.summary,
      /^open since \S+ \S+: 3 failures in a row reached the threshold of 3 \(from config snapshot cfg_\w+\): job .+; one probe may run after \S+ \S+ \(cooldown 1 h\)$/,
    )
    for (const id of failed) assert.ok(e.summary.includes(`job ${id}`), `the failing job ${id} is named`)
    assertCitedRowsExist(env.db, e.events)

    // A scheduler's job names its schedule.
    const job = (await runCli(['explain', 'job', failed[0] ?? '', '--db', env.dbPath, '--json'])).json()
    assert.match(job.events[0].text, /^enqueued by schedule default of engine "e2e"/)
    assert.match(job.summary, /^failed after 1 of 1 attempts: upstream said no$/)
    // The schedule's side of it, from the decisions the scheduler kept.
    const sched = await runCli(['explain', 'schedule', 'behave', '--db', env.dbPath, '--json'])
    assert.equal(sched.code, 0, sched.stderr)
    const [one] = sched.json().schedules
    assert.match(
      one.summary,
      new RegExp(
        `^last fired at \\S+ \\S+ \\(job ${failed[0]}, failed: upstream said no\\); not fired since \\S+ \\S+: its circuit breaker is open \\(ductile explain breaker behave\\); its last run has not succeeded, and an every-schedule counts its interval from the last success; (due now|next run at .+)$`,
      ),
    )
    assert.deepEqual(
      one.events.map((x: {text: string}) => x.text.replace(/( for |: job | \().*$/, '')).filter((t: string) => !t.startsWith('skipped: its previous')),
      ['fired', 'fired', 'fired', 'skipped: its circuit breaker is open'],
    )
    assertCitedRowsExist(env.db, one.events)
    assert.equal((await runCli(['schedules', 'pause', 'behave', '--reason', 'vendor outage', '--db', env.dbPath])).code, 0)
    const paused = (await runCli(['explain', 'schedule', 'behave', '--db', env.dbPath, '--json'])).json().schedules[0]
    assert.match(paused.summary, /^paused by an operator \(ductile schedules pause\) since \S+ \S+: vendor outage; last fired at /)
    const unknown = await runCli(['explain', 'schedule', 'behave', 'nope', '--db', env.dbPath])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no schedule nope of plugin behave/)

    assert.equal((await runCli(['breakers', 'reset', 'behave', '--db', env.dbPath])).code, 0)
    const after = (await runCli(['explain', 'breaker', 'behave', '--db', env.dbPath, '--json'])).json()
    assert.equal(after.state, 'closed')
    assert.match(after.summary, /^closed: reset by an operator \(ductile breakers reset\) at /)
    const never = (await runCli(['explain', 'breaker', 'echo-sh', '--db', env.dbPath, '--json'])).json()
    assert.match(never.summary, /^closed: it never tripped \(threshold 3 failures in a row, from the default \(config snapshot cfg_\w+ sets none\)\)$/)
  })
})
