// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {describe, it} from 'node:test'

import {WAKE_SIGNAL, lockPath, wakeEngine} from '../../src/lib/lock.js'
import {processStartTime} from '../../src/lib/proc.js'
import {formatTs, parseTs} from '../../src/schema/time.js'
import {runCli} from '../helpers/cli.js'
import {enqueue, jobRow, rows, startEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'
import {onPostgres, sqliteOnly} from '../helpers/store.js'

/** An engine that would not poll again within any test's time: only a wake can start a job. */
const NEVER_POLLS = 3_600_000

describe('waking the engine when another process queues a job', () => {
  it('`jobs enqueue` and `jobs retry` wake the engine: their jobs start without waiting for a poll', async () => {
    const env = testEnv()
    const engine = await startEngine(env, {pollIntervalMs: NEVER_POLLS})
    try {
      const r = await runCli(['jobs', 'enqueue', 'echo-sh', '--config', env.configPath, '--json'])
      assert.equal(r.code, 0, r.stderr)
      const first = await waitTerminal(env, r.json().job_id)
      assert.equal(first.status, 'succeeded')
      const again = await runCli(['jobs', 'retry', first.id, '--config', env.configPath, '--json'])
      assert.equal(again.code, 0, again.stderr)
      assert.equal((await waitTerminal(env, again.json().job_id)).status, 'succeeded')
    } finally {
      await engine.stop()
    }
  })

  it('a row written by a process that sends no wake (sqlite3, psql) is found by the poll', async () => {
    const env = testEnv()
    const engine = await startEngine(env)
    try {
      const now = formatTs(new Date())
      const id = '01900000-0000-7000-8000-00000000f00d'
      const insert = `INSERT INTO job_queue (id, plugin, command, payload, status, attempt, max_attempts, submitted_by, created_at) VALUES ('${id}', 'echo-sh', 'poll', '{}', 'queued', 1, 1, 'sqlite3', '${now}');`
      if (onPostgres) execFileSync('psql', [env.dbPath, '-qc', insert])
      else execFileSync('sqlite3', [env.dbPath, insert])
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
    } finally {
      await engine.stop()
    }
  })

  it('an idle engine runs a retry when its next_retry_at comes, with nothing else changing', async () => {
    const env = testEnv('plugins:\n  behave:\n    retry: {max_attempts: 2, backoff_base: 1s}\n')
    let now = Date.parse('2026-01-01T00:00:00Z')
    const engine = await startEngine(env, {clock: () => new Date(now)})
    try {
      const id = enqueue(env, 'behave', {mode: 'error'}, {maxAttempts: 2})
      const queued = await waitFor('the retry to be scheduled', () => {
        const j = jobRow(env.db, id)
        return j.status === 'queued' && j.attempt === 2 ? j : null
      })
      // The engine's clock stands still until the test moves it to the retry's time.
      now = parseTs(queued.next_retry_at)?.getTime() ?? Number.NaN
      assert.equal((await waitTerminal(env, id)).status, 'failed')
      assert.deepEqual(
        rows(env.db, 'SELECT attempt FROM job_attempts WHERE job_id = ? ORDER BY attempt', id).map((a) => a.attempt),
        [1, 2],
      )
    } finally {
      await engine.stop()
    }
  })
})

describe('wakeEngine', {skip: sqliteOnly}, () => {
  it('sends nothing without a live engine on this host', () => {
    const env = testEnv()
    assert.equal(wakeEngine(env.dbPath), false, 'no lock')
    writeFileSync(lockPath(env.dbPath), JSON.stringify({pid: process.pid, started_at: null, host: 'elsewhere', db: env.dbPath}))
    assert.equal(wakeEngine(env.dbPath), false, 'an engine on another host')
  })

  it('a lock whose PID now names another process: the signal does that process no harm', async () => {
    const env = testEnv()
    const other = spawn('sleep', ['60'], {stdio: 'ignore'})
    const ended = new Promise<NodeJS.Signals | null>((r) => other.on('exit', (_code, signal) => r(signal)))
    try {
      const pid = other.pid as number
      writeFileSync(lockPath(env.dbPath), JSON.stringify({pid, started_at: processStartTime(pid), host: hostname(), db: env.dbPath}))
      assert.equal(wakeEngine(env.dbPath), true)
      assert.equal(WAKE_SIGNAL, 'SIGURG')
    } finally {
      other.kill('SIGTERM')
    }
    // Had the wake signal ended it, it would not have lived to be ended by the SIGTERM.
    assert.equal(await ended, 'SIGTERM')
  })
})
