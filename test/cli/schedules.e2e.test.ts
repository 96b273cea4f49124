// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {ROOT, runCli} from '../helpers/cli.js'
import {rows, spawnEngine, testEnv, waitFor} from '../helpers/engine.js'

const history = (db: ReturnType<typeof testEnv>['db']) =>
  rows(
    db,
    `SELECT from_state, to_state, reason, failure_count, job_id FROM circuit_breaker_transitions WHERE plugin = 'behave' AND command = 'poll' ORDER BY created_at, id`,
  )

describe('scheduler and breakers in the real engine', () => {
  it('a 1-second schedule on a plugin that fails until a file exists: the whole breaker history', async () => {
    const env = testEnv('', {service: '  tick_interval: 200ms\n'})
    const flag = join(env.dir, 'ready')
    writeFileSync(
      env.configPath,
      `service:\n  name: e2e\n  tick_interval: 200ms\n  max_workers: 2\n${env.state}plugin_roots:\n  - ${join(ROOT, 'test/fixtures/plugins')}\nplugins:\n  behave:\n    retry: {max_attempts: 1}\n    circuit_breaker: {threshold: 3, reset_after: 2s}\n    schedules:\n      - {every: 1s, payload: {mode: fail_until_file, file: ${JSON.stringify(flag)}}}\n`,
    )
    const engine = spawnEngine(env.configPath)
    try {
      await waitFor('the breaker to open', () => history(env.db).length >= 1, 20_000)
      const opened = rows(env.db, `SELECT * FROM circuit_breakers WHERE plugin = 'behave'`)[0]
      assert.deepEqual([opened.state, opened.failure_count], ['open', 3])
      const jobsWhenOpened = rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE plugin = 'behave'`)[0].n
      assert.equal(jobsWhenOpened, 3, 'three failing polls, then nothing while open')
      await waitFor('the failed probe to reopen it', () => history(env.db).length >= 3, 20_000)
      writeFileSync(flag, 'now')
      await waitFor('the successful probe to close it', () => history(env.db).length >= 5, 20_000)
      const h = history(env.db)
      assert.deepEqual(
        h.map((t) => `${t.from_state}→${t.to_state} ${t.reason} ${t.failure_count}`),
        [
          'closed→open failure_threshold 3',
          'open→half_open cooldown_elapsed 3',
          'half_open→open failure_threshold 4',
          'open→half_open cooldown_elapsed 4',
          'half_open→closed success 0',
        ],
      )
      const jobs = rows(env.db, `SELECT id, status, submitted_by, dedupe_key FROM job_queue WHERE plugin = 'behave' ORDER BY created_at`)
      assert.deepEqual(
        jobs.slice(0, 5).map((j) => j.status),
        ['failed', 'failed', 'failed', 'failed', 'succeeded'],
      )
      assert.ok(jobs.every((j) => j.submitted_by === 'e2e' && j.dedupe_key === 'behave:poll:default'))
      for (const [i, t] of h.entries()) if (t.reason !== 'cooldown_elapsed') assert.equal(t.job_id, jobs[[2, -1, 3, -1, 4][i]].id)
      const entry = rows(env.db, `SELECT * FROM schedule_entries WHERE plugin = 'behave'`)[0]
      await waitFor(
        'the schedule to record the success',
        () => rows(env.db, `SELECT last_success_job_id FROM schedule_entries`)[0].last_success_job_id === jobs[4].id,
        5000,
      )
      assert.equal(entry.status, 'active')

      const list = await runCli(['breakers', 'history', 'behave', '--db', env.dbPath, '--json'])
      assert.equal(list.json().transitions.length, 5)
      assert.equal(list.json().transitions[0].reason, 'success')
    } finally {
      engine.child.kill('SIGTERM')
      assert.equal(await engine.exited, 0)
    }
  })

  it('schedules pause/resume and breakers reset work against a running engine', async () => {
    const env = testEnv('')
    writeFileSync(
      env.configPath,
      `service:\n  name: e2e\n  tick_interval: 200ms\n${env.state}plugin_roots:\n  - ${join(ROOT, 'test/fixtures/plugins')}\nplugins:\n  echo-sh:\n    schedules:\n      - {id: fast, every: 300ms}\n`,
    )
    const cfg = ['--config', env.configPath]
    // A pause before the first start holds from the engine's first tick.
    const pre = await runCli(['schedules', 'pause', 'echo-sh', 'fast', '--reason', 'not yet', ...cfg, '--json'])
    assert.equal(pre.code, 0, pre.stderr)
    assert.deepEqual(pre.json().changed, [{plugin: 'echo-sh', schedule_id: 'fast', from: 'active', to: 'paused_manual'}])
    const engine = spawnEngine(env.configPath)
    try {
      await waitFor('the engine to tick', () => engine.err().includes('schedule skipped'), 10_000)
      assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n, 0)
      assert.match(engine.err(), /schedule skipped plugin=echo-sh schedule=fast reason=schedule_paused_manual/)
      const list = await runCli(['schedules', 'list', '--all', ...cfg])
      assert.match(list.stdout, /paused_manual \(not yet\)/)

      const res = await runCli(['schedules', 'resume', 'echo-sh', ...cfg])
      assert.equal(res.code, 0, res.stderr)
      await waitFor('jobs to run', () => rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE status = 'succeeded'`)[0].n >= 2, 10_000)

      const p = await runCli(['schedules', 'pause', 'echo-sh', '--reason', 'maintenance', ...cfg])
      assert.equal(p.code, 0, p.stderr)
      await new Promise((r) => setTimeout(r, 400))
      const n = rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n
      await new Promise((r) => setTimeout(r, 800))
      assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n, n, 'no new jobs while paused')

      const reset = await runCli(['breakers', 'reset', 'echo-sh', ...cfg, '--json'])
      assert.equal(reset.code, 0, reset.stderr)
      assert.equal(reset.json().to, 'closed')
      assert.equal(
        rows(env.db, `SELECT reason FROM circuit_breaker_transitions WHERE plugin = 'echo-sh' ORDER BY created_at DESC LIMIT 1`)[0].reason,
        'manual_reset',
      )

      const unknown = await runCli(['schedules', 'resume', 'nope', ...cfg])
      assert.equal(unknown.code, 2)
      assert.match(unknown.stderr, /no paused schedule of plugin nope is known/)
      const noReason = await runCli(['schedules', 'pause', 'echo-sh', ...cfg])
      assert.equal(noReason.code, 2, 'a pause needs a reason')
    } finally {
      engine.child.kill('SIGTERM')
      assert.equal(await engine.exited, 0)
    }
  })
})
