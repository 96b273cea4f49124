import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {processAlive} from '../../src/lib/proc.js'
import {runCli} from '../helpers/cli.js'
import {assertJobRows, enqueue, jobRow, rows, testEnv, waitFor, waitTerminal, spawnEngine} from '../helpers/engine.js'
import {ago, insertAttempt, insertJob, insertTransition} from '../helpers/fixtures.js'

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('faults: crashes', () => {
  it('SIGKILL at random moments, 20 times, under a mixed workload: nothing is lost or run twice', {timeout: 240_000}, async () => {
    const env = testEnv('')
    const trace = join(env.dir, 'executions.log')
    writeFileSync(
      env.configPath,
      readFileSync(env.configPath, 'utf8') +
        `plugins:
  behave:
    config: {trace: ${JSON.stringify(trace)}}
    retry: {max_attempts: 3, backoff_base: 100ms}
    timeouts: {poll: 1s}
  facts-py:
    config: {label: crash}
`,
    )
    const modes = [{mode: 'ok'}, {mode: 'sleep', seconds: 0.3}, {mode: 'sleep', seconds: 0.8}, {mode: 'error'}, {mode: 'hang'}, {mode: 'retry_false'}]
    const ids: string[] = []
    for (let i = 0; i < 48; i++) ids.push(enqueue(env, 'behave', modes[i % modes.length], {maxAttempts: 3}))
    for (let i = 0; i < 12; i++) ids.push(enqueue(env, 'facts-py', {}, {maxAttempts: 3}))
    let kills = 0
    const t0 = Date.now()
    for (let round = 0; round < 20; round++) {
      const e = spawnEngine(env.configPath)
      await waitFor('the engine to start', () => e.err().includes('engine started') || e.child.exitCode !== null, 20_000)
      // New work keeps arriving between crashes, as it would in production.
      ids.push(enqueue(env, 'behave', modes[round % modes.length], {maxAttempts: 3}))
      await pause(150 + Math.floor(Math.random() * 700))
      e.child.kill('SIGKILL')
      await e.exited
      kills++
    }
    const final = spawnEngine(env.configPath)
    try {
      for (const id of ids) await waitTerminal(env, id, 60_000)
    } finally {
      final.child.kill('SIGTERM')
      assert.equal(await final.exited, 0)
    }
    const seconds = (Date.now() - t0) / 1000

    // Every enqueued job is terminal; none is left running.
    const jobs = rows(env.db, 'SELECT * FROM job_queue')
    assert.equal(jobs.length, ids.length)
    assert.deepEqual(
      jobs.filter((j) => ['queued', 'running'].includes(j.status)),
      [],
    )
    // No job has two job_log rows for one attempt.
    assert.deepEqual(rows(env.db, 'SELECT job_id, attempt, COUNT(*) AS n FROM job_log GROUP BY job_id, attempt HAVING n > 1'), [])
    // No job ran its plugin more times than its attempts say.
    const runs = new Map<string, number>()
    for (const id of readFileSync(trace, 'utf8').split('\n').filter(Boolean)) runs.set(id, (runs.get(id) ?? 0) + 1)
    for (const j of jobs) assert.ok((runs.get(j.id) ?? 0) <= j.attempt, `job ${j.id} ran ${runs.get(j.id)} times with attempt ${j.attempt}`)
    // Every table agrees with every job (transitions chain to its status, one log row per attempt, …).
    for (const j of jobs) assertJobRows(env, j.id)
    // job_transitions agree with job_queue's status for every job.
    for (const j of jobs) {
      const t = rows(env.db, 'SELECT from_status, to_status FROM job_transitions WHERE job_id = ? ORDER BY id', j.id)
      assert.equal(t[0].from_status, null)
      assert.equal(t[t.length - 1].to_status, j.status, `job ${j.id}`)
      for (let k = 1; k < t.length; k++) assert.equal(t[k].from_status, t[k - 1].to_status, `job ${j.id}: transitions chain`)
    }
    // storage_sequences equals the highest plugin_facts seq.
    const seq = rows(env.db, `SELECT value FROM storage_sequences WHERE name = 'plugin_facts'`)[0]?.value ?? 0
    const max = rows(env.db, 'SELECT MAX(seq) AS m FROM plugin_facts')[0].m ?? 0
    assert.equal(seq, max)
    assert.equal(
      rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE plugin = 'facts-py' AND status = 'succeeded'`)[0].n,
      rows(env.db, 'SELECT COUNT(*) AS n FROM plugin_facts')[0].n,
      'one fact per successful poll',
    )
    const statuses = Object.fromEntries(rows(env.db, 'SELECT status, COUNT(*) AS n FROM job_queue GROUP BY status').map((r) => [r.status, r.n]))
    const recovered = rows(env.db, `SELECT COUNT(*) AS n FROM job_log WHERE last_error LIKE 'interrupted%'`)[0].n
    console.log(
      `# crash suite: ${kills} SIGKILLs in ${seconds.toFixed(0)} s, ${jobs.length} jobs, ${recovered} interrupted attempts recovered, final ${JSON.stringify(statuses)}`,
    )
    if (process.env.FAULT_RESULTS)
      writeFileSync(process.env.FAULT_RESULTS, `${JSON.stringify({kills, seconds, jobs: jobs.length, recovered, statuses})}\n`, {flag: 'a'})
  })

  it('an orphan whose engine and plugin are gone is recovered by a running engine (its periodic check)', {timeout: 120_000}, async () => {
    const env = testEnv(`plugins:\n  echo-sh: {}\n`)
    const e = spawnEngine(env.configPath)
    try {
      await waitFor('the engine to start', () => e.err().includes('engine started'), 15_000)
      // After the engine started, a row shows up running under another engine that is gone, with a plugin
      // that is gone too (as if that engine died on another shift): start-up recovery never saw it.
      const job = insertJob(env.db, {plugin: 'echo-sh', status: 'running', max_attempts: 3, started_at: ago(1000), created_at: ago(2000)})
      insertTransition(env.db, {job_id: job.id, from_status: null, to_status: 'queued', created_at: ago(2000)})
      insertTransition(env.db, {job_id: job.id, from_status: 'queued', to_status: 'running', created_at: ago(1000)})
      insertAttempt(env.db, {job_id: job.id, attempt: 1, engine_pid: 999_998, plugin_pid: 999_997, created_at: ago(1000)})
      // The check runs every ORPHAN_CHECK_MS; how soon is a timing claim, not this test's.
      const j = await waitTerminal(env, job.id, 90_000)
      assert.equal(j.status, 'succeeded')
      assert.equal(j.attempt, 2)
      assert.match(e.err(), /recovered orphaned running jobs requeued=1/)
    } finally {
      e.child.kill('SIGTERM')
      await e.exited
    }
  })

  it('a plugin process group killed from outside mid-run: the job fails that attempt and retries by the rules', async () => {
    const env = testEnv(`plugins:\n  behave:\n    retry: {max_attempts: 2, backoff_base: 100ms}\n`)
    const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 30}, {maxAttempts: 2})
    const e = spawnEngine(env.configPath)
    try {
      const pid = await waitFor(
        'the plugin pid',
        () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ? AND attempt = 1', id)[0]?.plugin_pid as number | undefined,
      )
      process.kill(-pid, 'SIGKILL')
      await waitFor('the retry', () => jobRow(env.db, id).attempt === 2)
      const log = rows(env.db, 'SELECT attempt, status, last_error FROM job_log WHERE job_id = ?', id)[0]
      assert.equal(log.status, 'failed')
      assert.match(log.last_error, /plugin produced no output on stdout \(killed by SIGKILL\)/)
      const pid2 = await waitFor(
        'the second attempt',
        () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ? AND attempt = 2', id)[0]?.plugin_pid as number | undefined,
      )
      process.kill(-pid2, 'SIGKILL')
      const j = await waitTerminal(env, id)
      assert.deepEqual([j.status, j.attempt], ['failed', 2], 'attempts exhausted: failed')
      assert.equal(processAlive(pid), false)
    } finally {
      e.child.kill('SIGTERM')
      await e.exited
    }
    assert.ok(!existsSync(`${env.dbPath}.pid`))
  })

  it("jobs stuck shows whether a running job's process is alive", async () => {
    const env = testEnv(`plugins:\n  behave: {}\n`)
    const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 2})
    const e = spawnEngine(env.configPath)
    try {
      await waitFor('the plugin pid', () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ?', id)[0]?.plugin_pid)
      const r = await runCli(['jobs', 'stuck', '--older-than', '1ms', '--db', env.dbPath, '--json'])
      const job = r.json().jobs.find((j: {id: string}) => j.id === id)
      assert.equal(job.process_alive, true)
      assert.equal(job.engine_alive, true)
    } finally {
      e.child.kill('SIGINT')
      await e.exited
    }
  })
})
