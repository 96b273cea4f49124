import assert from 'node:assert/strict'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {insertBreaker} from '../helpers/fixtures.js'
import {enqueue, rows, testEnv, waitFor, spawnEngine} from '../helpers/engine.js'

const outstanding = (env: ReturnType<typeof testEnv>) => rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE status IN ('queued', 'running')`)[0].n

describe('faults: concurrency', () => {
  it('read commands in a tight loop while the engine runs jobs: no SQLITE_BUSY or "locked" on either side', {timeout: 120_000}, async () => {
    const env = testEnv('plugins:\n  facts-py:\n    config: {label: busy}\n', {service: '  max_workers: 2\n'})
    const ids: string[] = []
    for (let i = 0; i < 300; i++) ids.push(enqueue(env, i % 10 === 0 ? 'facts-py' : 'echo-sh'))
    const e = spawnEngine(env.configPath)
    const errors: string[] = []
    let reads = 0
    try {
      await waitFor('the engine to start', () => e.err().includes('engine started'), 15_000)
      const db = ['--db', env.dbPath]
      while (outstanding(env) > 0) {
        for (const args of [
          ['jobs', 'status'],
          ['facts', 'facts-py'],
          ['breakers', 'list'],
          ['jobs', 'inspect', ids[reads % ids.length]],
        ]) {
          const r = await runCli([...args, ...db, '--json'])
          reads++
          if (r.code !== 0 || /SQLITE_BUSY|database is locked/i.test(r.stderr + r.stdout)) errors.push(`${args.join(' ')}: ${r.code} ${r.stderr}`)
        }
      }
    } finally {
      e.child.kill('SIGTERM')
      assert.equal(await e.exited, 0)
    }
    assert.deepEqual(errors, [])
    assert.doesNotMatch(e.err(), /SQLITE_BUSY|database is locked|claim failed/i)
    assert.ok(reads >= 8, `${reads} reads ran alongside`)
    assert.equal(rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE status = 'succeeded'`)[0].n, 300)
  })

  it('prune, breakers reset, schedules pause, jobs enqueue and db backup against a busy engine: all succeed, nothing lost', {timeout: 120_000}, async () => {
    const env = testEnv('plugins:\n  echo-sh:\n    schedules:\n      - {id: fast, every: 1s}\n', {service: '  max_workers: 2\n  tick_interval: 200ms\n'})
    for (let i = 0; i < 300; i++) enqueue(env, 'echo-sh')
    // A breaker with a failure on its count, so that the reset below really writes (a reset of a breaker that
    // never tripped writes nothing).
    insertBreaker(env.db, {plugin: 'echo-sh', command: 'poll', state: 'closed', failure_count: 1, opened_at: null})
    const e = spawnEngine(env.configPath)
    try {
      await waitFor('the engine to start', () => e.err().includes('engine started'), 15_000)
      const cfg = ['--config', env.configPath]
      const results = await Promise.all([
        runCli(['prune', ...cfg, '--json']),
        runCli(['breakers', 'reset', 'echo-sh', ...cfg]),
        runCli(['schedules', 'pause', 'echo-sh', 'fast', '--reason', 'busy test', ...cfg]),
        runCli(['db', 'backup', '--to', join(env.dir, 'busy-backup.db'), ...cfg, '--json']),
        ...Array.from({length: 5}, () => runCli(['jobs', 'enqueue', 'echo-sh', ...cfg])),
      ])
      for (const r of results) assert.equal(r.code, 0, r.stderr)
      assert.equal(results[3].json().integrity, 'ok')
      await waitFor('every job to finish', () => outstanding(env) === 0, 60_000)
    } finally {
      e.child.kill('SIGTERM')
      assert.equal(await e.exited, 0)
    }
    const manual = rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE submitted_by = 'cli' AND status = 'succeeded'`)[0].n
    assert.equal(manual, 305, 'the 300 queued and 5 enqueued during the run all succeeded')
    assert.equal(rows(env.db, `SELECT status FROM schedule_entries WHERE plugin = 'echo-sh'`)[0].status, 'paused_manual')
    assert.equal(rows(env.db, `SELECT reason FROM circuit_breaker_transitions ORDER BY created_at DESC LIMIT 1`)[0].reason, 'manual_reset')
    assert.doesNotMatch(e.err(), /SQLITE_BUSY|database is locked/i)
  })
})
