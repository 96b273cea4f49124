// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {parentPid, processAlive} from '../../src/lib/proc.js'
import {formatTs} from '../../src/schema/time.js'
import {assertJobRows, enqueue, jobRow, rows, startEngine, testEnv, waitFor, waitTerminal as waitFinished} from '../helpers/engine.js'

/** Wait for the job, then check every table it must have written (job_queue … plugin_state). */
async function waitTerminal(env: ReturnType<typeof testEnv>, id: string, timeoutMs?: number) {
  await waitFinished(env, id, timeoutMs)
  return assertJobRows(env, id).job
}

const PLUGINS = `plugins:
  facts-py:
    config: {label: kitchen}
  behave:
    retry: {max_attempts: 3, backoff_base: 100ms}
    timeouts: {poll: 1500ms, sync: 1s}
  term-ignorer:
    timeouts: {poll: 500ms}
`

const transitions = (env: ReturnType<typeof testEnv>, id: string) =>
  rows(env.db, 'SELECT from_status, to_status, reason FROM job_transitions WHERE job_id = ? ORDER BY id', id).map(
    (t) => `${t.from_status ?? '∅'}→${t.to_status}`,
  )

describe('worker loop: outcomes and the rows they write', () => {
  it('ok with facts: succeeded, transitions, attempt with pid, job_log, plugin_facts seq, mirrored state', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'facts-py')
      const job = await waitTerminal(env, id)
      assert.equal(job.status, 'succeeded')
      assert.equal(job.last_error, null)
      assert.deepEqual(transitions(env, id), ['∅→queued', 'queued→running', 'running→succeeded'])
      const attempts = rows(env.db, 'SELECT * FROM job_attempts WHERE job_id = ?', id)
      assert.equal(attempts.length, 1)
      assert.equal(attempts[0].engine_pid, process.pid)
      assert.ok(attempts[0].plugin_pid > 0)
      const log = rows(env.db, 'SELECT * FROM job_log WHERE job_id = ?', id)
      assert.equal(log.length, 1)
      assert.equal(log[0].id, `${id}-1`)
      assert.equal(log[0].status, 'succeeded')
      assert.equal(JSON.parse(log[0].result).result, 'counted 1')
      assert.match(log[0].stderr, /facts-py: poll number 1/)
      assert.equal(log[0].started_at, job.started_at)
      assert.equal(log[0].completed_at, job.completed_at)
      const facts = rows(env.db, 'SELECT * FROM plugin_facts')
      assert.equal(facts.length, 1)
      assert.equal(facts[0].seq, 1)
      assert.equal(facts[0].fact_type, 'facts-py.snapshot')
      assert.equal(facts[0].job_id, id)
      assert.deepEqual(JSON.parse(facts[0].fact_json), {count: 1, instance: 'facts-py', label: 'kitchen'})
      const state = rows(env.db, `SELECT * FROM plugin_state WHERE plugin_name = 'facts-py'`)[0]
      assert.equal(state.state, facts[0].fact_json, 'plugin_state mirrors the latest fact')

      const id2 = enqueue(env, 'facts-py')
      await waitTerminal(env, id2)
      assert.deepEqual(
        rows(env.db, 'SELECT seq FROM plugin_facts ORDER BY seq').map((f) => f.seq),
        [1, 2],
      )
      assert.equal(rows(env.db, `SELECT value FROM storage_sequences WHERE name = 'plugin_facts'`)[0].value, 2)
      assert.equal(JSON.parse(rows(env.db, `SELECT state FROM plugin_state WHERE plugin_name = 'facts-py'`)[0].state).count, 2)
      const snap = rows(env.db, 'SELECT * FROM config_snapshots')
      assert.equal(snap.length, 1)
      assert.equal(snap[0].reason, 'startup')
      assert.equal(job.started_config_snapshot_id, snap[0].id)
    } finally {
      await engine.stop()
    }
  })

  it('back to back on one worker, each request carries the state the previous attempt wrote', async () => {
    // The next job is claimed and started before the previous outcome is written only when that outcome
    // changes no plugin state; the facts-py outcomes do, the echo-sh ones after them do not.
    const env = testEnv(PLUGINS, {service: '  max_workers: 1\n'})
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(enqueue(env, 'facts-py'))
    for (let i = 0; i < 3; i++) enqueue(env, 'echo-sh')
    const engine = await startEngine(env)
    try {
      for (const id of ids) assert.equal((await waitTerminal(env, id)).status, 'succeeded')
      const results = ids.map((id) => JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', id)[0].result).result)
      assert.deepEqual(results, ['counted 1', 'counted 2', 'counted 3'])
      await waitFor(
        'the echo-sh jobs in between',
        () => rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE plugin = 'echo-sh' AND status = 'succeeded'`)[0].n === 3,
      )
      for (const id of ids) assertJobRows(env, id)
      const spans = rows(env.db, `SELECT started_at, completed_at FROM job_queue ORDER BY started_at`)
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i].started_at >= spans[i - 1].completed_at, 'one worker: no overlap on record')
    } finally {
      await engine.stop()
    }
  })

  it('legacy state (no fact_outputs) is shallow-merged into plugin_state', async () => {
    const env = testEnv(PLUGINS)
    env.db.exec(
      `INSERT INTO plugin_state (plugin_name, state, updated_at) VALUES ('legacy-node', '{"keep":1,"nested":{"old":true}}', '2026-01-01 00:00:00.000')`,
    )
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'legacy-node')
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
      const state = JSON.parse(rows(env.db, `SELECT state FROM plugin_state WHERE plugin_name = 'legacy-node'`)[0].state)
      assert.deepEqual(state, {keep: 1, nested: {only: 'new'}, polled: 1})
      assert.equal(rows(env.db, 'SELECT * FROM plugin_facts').length, 0)
    } finally {
      await engine.stop()
    }
  })

  it('a retryable error is retried with backoff; every attempt has its own job_log row', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'behave', {mode: 'error'}, {maxAttempts: 3})
      const job = await waitTerminal(env, id)
      assert.equal(job.status, 'failed')
      assert.equal(job.attempt, 3)
      assert.equal(job.last_error, 'upstream said no')
      assert.deepEqual(transitions(env, id), [
        '∅→queued',
        'queued→running',
        'running→queued',
        'queued→running',
        'running→queued',
        'queued→running',
        'running→failed',
      ])
      const log = rows(env.db, 'SELECT id, status, attempt, stderr, started_at, completed_at FROM job_log WHERE job_id = ? ORDER BY attempt', id)
      assert.deepEqual(
        log.map((l) => [l.id, l.status]),
        [
          [`${id}-1`, 'failed'],
          [`${id}-2`, 'failed'],
          [`${id}-3`, 'failed'],
        ],
      )
      assert.ok(log.every((l) => l.stderr.includes('upstream said no')))
      const starts = rows(env.db, 'SELECT created_at FROM job_attempts WHERE job_id = ? ORDER BY attempt', id).map((a) =>
        Date.parse(`${a.created_at.replace(' ', 'T')}Z`),
      )
      assert.equal(starts.length, 3)
      assert.ok(starts[1] - starts[0] >= 100, `backoff base 100ms (got ${starts[1] - starts[0]})`)
      assert.ok(starts[2] - starts[1] >= 200, `second backoff doubles (got ${starts[2] - starts[1]})`)
    } finally {
      await engine.stop()
    }
  })

  it('retry: false and exit 78 are never retried', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const a = enqueue(env, 'behave', {mode: 'retry_false'}, {maxAttempts: 3})
      const b = enqueue(env, 'behave', {mode: 'exit78'}, {maxAttempts: 3})
      const ja = await waitTerminal(env, a)
      const jb = await waitTerminal(env, b)
      assert.deepEqual([ja.status, ja.attempt, ja.last_error], ['failed', 1, 'bad input, do not retry'])
      assert.deepEqual([jb.status, jb.attempt, jb.last_error], ['failed', 1, 'misconfigured'])
      assert.match(rows(env.db, 'SELECT stderr FROM job_log WHERE job_id = ?', b)[0].stderr, /config is wrong/)
    } finally {
      await engine.stop()
    }
  })

  it('a hanging plugin times out: timed_out, result NULL, retried until exhausted', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'behave', {mode: 'hang'}, {maxAttempts: 2, command: 'sync'})
      const job = await waitTerminal(env, id, 20_000)
      assert.equal(job.status, 'timed_out')
      assert.equal(job.attempt, 2)
      assert.equal(job.last_error, 'plugin execution timed out after 1s')
      const log = rows(env.db, 'SELECT status, result FROM job_log WHERE job_id = ? ORDER BY attempt', id)
      assert.deepEqual(log, [
        {status: 'timed_out', result: null},
        {status: 'timed_out', result: null},
      ])
      const pids = rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ?', id).map((r) => r.plugin_pid)
      for (const pid of pids) assert.equal(processAlive(pid), false, 'the plugin was killed')
    } finally {
      await engine.stop()
    }
  })

  it('a plugin whose child ignores SIGTERM is killed with its whole group after the grace period', async () => {
    const env = testEnv(PLUGINS)
    const pidFile = `${process.env.TMPDIR ?? '/tmp'}/term-ignorer-child.pid`
    rmSync(pidFile, {force: true})
    const engine = await startEngine(env, {killGraceMs: 300})
    try {
      const id = enqueue(env, 'term-ignorer')
      const job = await waitTerminal(env, id)
      assert.equal(job.status, 'timed_out')
      assert.ok(existsSync(pidFile), 'the plugin started its child')
      const child = Number(readFileSync(pidFile, 'utf8'))
      await waitFor('the SIGTERM-ignoring child to be gone', () => !processAlive(child), 3000)
    } finally {
      await engine.stop()
    }
  })

  it('classifies bad output: flood, invalid JSON, empty, missing result; valid JSON wins over exit status', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const ids = Object.fromEntries(
        ['flood_stdout', 'flood_stderr', 'invalid_json', 'empty', 'missing_result', 'nonzero_valid', 'binary', 'two_docs', 'array', 'bad_utf8_stderr'].map(
          (m) => [m, enqueue(env, 'behave', {mode: m}, {maxAttempts: 1})],
        ),
      )
      const get = async (m: string) => {
        const job = await waitTerminal(env, ids[m], 30_000)
        const log = rows(env.db, 'SELECT * FROM job_log WHERE job_id = ?', ids[m])[0]
        return {job, log}
      }
      const flood = await get('flood_stdout')
      assert.equal(flood.job.status, 'failed')
      assert.match(flood.job.last_error, /stdout exceeded 10485760 bytes and was cut there; the result keeps the first 65536 bytes, 10420224 more were dropped/)
      assert.equal(Buffer.byteLength(flood.log.result), 65_536, 'a bounded head is kept, not the whole 10 MiB')

      const noisy = await get('flood_stderr')
      assert.equal(noisy.job.status, 'succeeded')
      assert.equal(Buffer.byteLength(noisy.log.stderr), 65_536)

      const bad = await get('invalid_json')
      assert.equal(bad.job.status, 'failed')
      assert.match(bad.job.last_error, /^invalid plugin response: plugin output is not valid JSON/)
      assert.equal(bad.log.result, 'this is not json\n', 'raw stdout is kept')

      const empty = await get('empty')
      assert.equal(empty.job.last_error, 'invalid plugin response: plugin produced no output on stdout')
      assert.equal(empty.log.result, null)

      const missing = await get('missing_result')
      assert.match(missing.job.last_error, /response has status=ok but no result message/)

      const nonzero = await get('nonzero_valid')
      assert.equal(nonzero.job.status, 'succeeded')

      const binary = await get('binary')
      assert.equal(binary.job.status, 'failed')
      assert.match(binary.job.last_error, /not valid JSON/)

      const two = await get('two_docs')
      assert.match(two.job.last_error, /not valid JSON/)

      const arr = await get('array')
      assert.match(arr.job.last_error, /response is not a JSON object \(got an array\)/)

      const utf = await get('bad_utf8_stderr')
      assert.equal(utf.job.status, 'succeeded')
      assert.match(utf.log.stderr, /caf\uFFFD \uFFFD\uFFFD broken/)
    } finally {
      await engine.stop()
    }
  })

  it('unknown plugin or command fails directly, without retry', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const a = enqueue(env, 'no-such-plugin', {}, {maxAttempts: 3})
      const b = enqueue(env, 'facts-py', {}, {maxAttempts: 3, command: 'frobnicate'})
      const ja = await waitTerminal(env, a)
      const jb = await waitTerminal(env, b)
      assert.deepEqual([ja.status, ja.attempt], ['failed', 1])
      assert.match(ja.last_error, /plugin no-such-plugin is not installed/)
      assert.match(jb.last_error, /plugin facts-py has no command frobnicate \(manifest commands: poll, health\)/)
      assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_log WHERE job_id IN (?, ?)', a, b)[0].n, 2)
    } finally {
      await engine.stop()
    }
  })

  it('plugins get only the allowlisted environment plus plugin_env_passthrough; the request has every field', async () => {
    const env = testEnv(PLUGINS, {service: '  plugin_env_passthrough: [DUCTILE_TEST_PASS]\n'})
    process.env.DUCTILE_TEST_PASS = 'yes'
    process.env.DUCTILE_TEST_SECRET = 'must-not-leak'
    const engine = await startEngine(env)
    try {
      const a = enqueue(env, 'behave', {mode: 'env'})
      const b = enqueue(env, 'behave', {mode: 'echo_request', extra: 1})
      const c = enqueue(env, 'legacy-node', {})
      const envOut = JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', (await waitTerminal(env, a)).id)[0].result).result.env
      assert.equal(envOut.DUCTILE_TEST_PASS, 'yes')
      assert.equal(envOut.DUCTILE_TEST_SECRET, undefined)
      // The Node plugin reports its environment's names as it got them (a Python shim may add its own).
      const names: string[] = JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', (await waitTerminal(env, c)).id)[0].result).result.env
      assert.ok(names.includes('PATH') && names.includes('DUCTILE_TEST_PASS'))
      // DUCTILE_RUN marks every process of this engine's database, so a restarted engine finds what it left.
      assert.ok(names.includes('DUCTILE_RUN'))
      for (const k of names)
        assert.ok(
          ['PATH', 'HOME', 'TZ', 'LANG', 'LANGUAGE', 'TMPDIR', 'DUCTILE_TEST_PASS', 'DUCTILE_RUN'].includes(k) || k.startsWith('LC_'),
          `unexpected variable ${k}`,
        )
      const req = JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', (await waitTerminal(env, b)).id)[0].result).result
      assert.equal(req.protocol, 2)
      assert.equal(req.job_id, b)
      assert.equal(req.command, 'poll')
      assert.equal(req.instance, 'behave')
      assert.deepEqual(req.payload, {mode: 'echo_request', extra: 1})
      assert.deepEqual(req.state, {})
      assert.equal(req.context.ductile_plugin, 'behave')
      assert.ok(Date.parse(req.deadline_at) > Date.now() - 60_000)
    } finally {
      delete process.env.DUCTILE_TEST_PASS
      delete process.env.DUCTILE_TEST_SECRET
      await engine.stop()
    }
  })

  it('the spawn helper dying mid-run fails that attempt retryably; the next attempt gets a new helper', async () => {
    const env = testEnv(PLUGINS)
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 1}, {maxAttempts: 3})
      await waitFor('the plugin to start', () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ?', id)[0]?.plugin_pid)
      const helper = engine.spawnHelperPid()
      assert.ok(helper, 'plugins are started by the spawn helper')
      const plugin = rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ? AND attempt = 1', id)[0].plugin_pid
      process.kill(helper, 'SIGKILL')
      await waitFor('the orphaned plugin to be stopped', () => !processAlive(plugin), 3000)
      const job = await waitTerminal(env, id)
      assert.deepEqual([job.status, job.attempt], ['succeeded', 2])
      const first = rows(env.db, 'SELECT status, last_error FROM job_log WHERE job_id = ? AND attempt = 1', id)[0]
      assert.equal(first.status, 'failed')
      assert.match(first.last_error, /the spawn helper exited \(SIGKILL\)/)
      assert.notEqual(engine.spawnHelperPid(), helper)
    } finally {
      await engine.stop()
    }
  })

  it('who starts plugins: the Python helper by default, the Node helper or the engine itself when configured', async () => {
    for (const [service, kind] of [
      ['  max_workers: 1\n', 'python'],
      ['  max_workers: 2\n  spawn_helper: node\n', 'node'],
      ['  max_workers: 2\n  spawn_helper: off\n', null],
    ] as const) {
      // The plugin holds until the checks are done (a sleep under the suite's short timeouts could end first).
      const env = testEnv('plugins:\n  behave: {}\n', {service})
      const engine = await startEngine(env)
      const file = join(env.dir, 'release')
      try {
        const id = enqueue(env, 'behave', {mode: 'wait_file', file})
        await waitFor('the plugin to start', () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ?', id)[0]?.plugin_pid)
        const pid = rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ?', id)[0].plugin_pid
        const parent = parentPid(pid)
        const helper = engine.spawnHelperPid()
        assert.equal(helper !== null, kind !== null, `${service.trim()}: a helper ${kind ?? 'none'}`)
        assert.equal(parent, helper ?? process.pid, 'the plugin is a child of the process that started it')
        if (helper)
          assert.match(readFileSync(`/proc/${helper}/cmdline`, 'utf8'), kind === 'python' ? /python3.*helpers\/spawner\.py/ : /helpers\/spawner-node\.js/)
        assert.match(env.logs.find((l) => l.includes('engine started')) ?? '', new RegExp(`spawn=${kind ? `${kind}-helper` : 'engine'}`))
        writeFileSync(file, '')
        assert.equal((await waitTerminal(env, id)).status, 'succeeded')
      } finally {
        await engine.stop()
      }
    }
  })

  it('whoever starts it, a plugin starts with the default handling of SIGTERM, SIGINT and SIGHUP (a timeout or a stop can end it)', async () => {
    for (const service of ['  max_workers: 1\n', '  max_workers: 2\n  spawn_helper: node\n', '  max_workers: 2\n  spawn_helper: off\n']) {
      const env = testEnv(PLUGINS, {service})
      const engine = await startEngine(env)
      try {
        const id = enqueue(env, 'behave', {mode: 'dispositions'})
        assert.equal((await waitTerminal(env, id)).status, 'succeeded')
        const result = rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', id)[0]?.result
        assert.deepEqual(JSON.parse(JSON.parse(result).result), {SIGTERM: 'default', SIGINT: 'default', SIGHUP: 'default'}, service.trim())
      } finally {
        await engine.stop()
      }
    }
  })

  it('FIFO within max_workers, per-plugin parallelism and dedupe-key serialisation', async () => {
    const env = testEnv(`plugins:
  behave:
    parallelism: 1
`)
    const engine = await startEngine(env)
    try {
      const a = enqueue(env, 'behave', {mode: 'sleep', seconds: 0.4})
      const b = enqueue(env, 'behave', {mode: 'sleep', seconds: 0.4})
      const c = enqueue(env, 'legacy-node', {})
      const d = enqueue(env, 'legacy-node', {}, {dedupeKey: 'k'})
      const e = enqueue(env, 'echo-sh', {}, {dedupeKey: 'k'})
      for (const id of [a, b, c, d, e]) await waitTerminal(env, id)
      const ja = jobRow(env.db, a)
      const jb = jobRow(env.db, b)
      assert.ok(jb.started_at >= ja.completed_at, 'parallelism 1: the second behave job waited for the first')
      const jc = jobRow(env.db, c)
      assert.ok(jc.started_at < ja.completed_at, 'another plugin ran meanwhile (max_workers 2)')
    } finally {
      await engine.stop()
    }
  })
})

describe('stopping the engine', () => {
  it('schedules nothing while running jobs drain', async () => {
    // A schedule that fires every tick (100 ms), and a job that keeps the drain busy for a second.
    const env = testEnv('plugins:\n  echo-sh:\n    schedules:\n      - {every: 100ms}\n', {service: '  tick_interval: 100ms\n  max_workers: 2\n'})
    const engine = await startEngine(env)
    const scheduled = () => rows(env.db, `SELECT created_at FROM job_queue WHERE plugin = 'echo-sh'`).map((r) => r.created_at as string)
    let stopAt = ''
    try {
      await waitFor('the schedule to fire', () => scheduled().length >= 2)
      const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 1})
      await waitFor('the long job to run', () => jobRow(env.db, id).status === 'running')
    } finally {
      stopAt = formatTs(new Date())
      await engine.stop()
    }
    // Every tick of the drain would have enqueued one; the old engine stopped its ticks first, and so must the parts.
    assert.deepEqual(
      scheduled().filter((at) => at > stopAt),
      [],
    )
  })
})
