// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {claimNextJob} from '../../src/queries/queue.js'
import {formatTs} from '../../src/schema/time.js'
import {join} from 'node:path'

import {runCli} from '../helpers/cli.js'
import {tempDir} from '../helpers/db.js'
import {assertCitedRowsExist, enqueue, startEngine, testEnv, waitTerminal} from '../helpers/engine.js'
import {onPostgres} from '../helpers/store.js'

type Env = ReturnType<typeof testEnv>

const explain = async (env: Env, id: string) => {
  const r = await runCli(['explain', 'job', id, '--db', env.dbPath, '--json'])
  assert.equal(r.code, 0, r.stderr)
  return r.json() as {summary: string; status: string; events: {at: string; kind: string; text: string; rows: string[]}[]}
}

describe('ductile explain job, on what the real engine wrote', () => {
  it('a job that failed every attempt: the sentence, the attempts, the retry gaps, and rows that exist', async () => {
    const env = testEnv('plugins:\n  behave:\n    retry: {max_attempts: 3, backoff_base: 100ms}\n')
    const engine = await startEngine(env)
    let id: string
    try {
      id = enqueue(env, 'behave', {mode: 'error'}, {maxAttempts: 3})
      assert.equal((await waitTerminal(env, id)).status, 'failed')
    } finally {
      await engine.stop()
    }
    const e = await explain(env, id)
    assert.match(e.summary, /^failed after 3 of 3 attempts: .+ each time; retries were \S+ (ms|s) and \S+ (ms|s) apart$/)
    assert.deepEqual(
      e.events.filter((x) => x.kind !== 'config').map((x) => x.kind),
      ['enqueued', 'started', 'retry', 'started', 'retry', 'started', 'failed'],
    )
    // Enqueued from another connection (as a CLI does): no snapshot then; the engine's when it started.
    assert.match(e.events.find((x) => x.kind === 'config')?.text ?? '', /^attempt 3 started under config snapshot cfg_\w+ \(startup, /)
    assert.deepEqual(
      e.events.map((x) => x.at),
      e.events.map((x) => x.at).sort(),
      'in time order',
    )
    assertCitedRowsExist(env.db, e.events)
    const human = await runCli(['explain', 'job', id, '--db', env.dbPath])
    assert.match(human.stdout, /failed after 3 of 3 attempts/)
    assert.match(human.stdout, /attempt 2 of 3 started \(engine PID \d+, plugin PID \d+\)/)
  })

  it('an attempt a crashed engine left running: the next engine requeues it, and the story says so', async () => {
    const env = testEnv()
    const id = enqueue(env, 'echo-sh', {}, {maxAttempts: 3})
    // What an engine killed mid-attempt leaves: the job running, claimed by a PID that is gone.
    claimNextJob(env.db, {now: formatTs(new Date()), excludePlugins: new Set(), snapshotId: null, enginePid: 2 ** 22 + 1, engineId: null})
    const engine = await startEngine(env)
    try {
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
    } finally {
      await engine.stop()
    }
    const e = await explain(env, id)
    assert.equal(e.summary, 'succeeded on attempt 2 of 3; an engine stop interrupted an attempt, and the next start requeued it')
    assert.match(e.events.find((x) => x.kind === 'recovered')?.text ?? '', /attempt 1 was interrupted/)
    assertCitedRowsExist(env.db, e.events)
    // Told from the rows alone: a copy of the database (a SQLite file, whichever the store), elsewhere, with no
    // engine, says the same.
    const copy = join(tempDir('ductile-copy-'), 'copy.db')
    const made = await runCli(onPostgres ? ['db', 'copy', '--from', env.dbPath, '--to', copy] : ['db', 'backup', '--to', copy, '--db', env.dbPath])
    assert.equal(made.code, 0, made.stderr)
    const fromCopy = await runCli(['explain', 'job', id, '--db', copy, '--json'])
    assert.deepEqual(fromCopy.json(), e)
  })

  it('an enqueue deduplicated against a job is part of its story', async () => {
    const env = testEnv()
    const engine = await startEngine(env)
    let first: string
    try {
      const a = await runCli(['jobs', 'enqueue', 'echo-sh', '--dedupe-key', 'reading-42', '--config', env.configPath, '--json'])
      first = a.json().job_id
      assert.equal((await waitTerminal(env, first)).status, 'succeeded')
      const b = await runCli(['jobs', 'enqueue', 'echo-sh', '--dedupe-key', 'reading-42', '--config', env.configPath, '--json'])
      assert.deepEqual([b.json().status, b.json().job_id], ['deduplicated', first])
    } finally {
      await engine.stop()
    }
    const e = await explain(env, first)
    const hit = e.events.find((x) => x.rows.some((r) => r.startsWith('dedupe_hits#')))
    assert.equal(hit?.text, 'an enqueue by an operator was deduplicated against this job (dedupe key reading-42): no new job')
    assertCitedRowsExist(env.db, e.events)
  })

  it('an unknown id: exit 1 with what to do', async () => {
    const env = testEnv()
    const r = await runCli(['explain', 'job', '01900000-0000-7000-8000-0000000000aa', '--db', env.dbPath])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /no job 01900000-0000-7000-8000-0000000000aa/)
    assert.match(r.stderr, /ductile jobs list/)
  })
})
