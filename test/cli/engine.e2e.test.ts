import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {affinityPlan, allowedCpus, formatCpuList, otherEnginesCpus, parseCpuList, threadCpus} from '../../src/engine/affinity.js'
import {findOnPath} from '../../src/lib/which.js'
import {parentPid} from '../../src/lib/proc.js'
import {tempDir} from '../helpers/db.js'
import {runCli} from '../helpers/cli.js'
import {type EngineProcess, enqueue, jobRow, rows, spawnEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'

const PLUGINS = `plugins:
  facts-py:
    config: {label: e2e}
  behave:
    retry: {max_attempts: 3, backoff_base: 100ms}
`

async function started(e: EngineProcess) {
  await waitFor('the engine to start', () => e.err().includes('engine started') || e.child.exitCode !== null, 15_000)
  assert.ok(e.err().includes('engine started'), e.err())
}

describe('engine start (the real CLI)', () => {
  it('runs jobs enqueued by another process, logs each job, stops cleanly on SIGTERM', async () => {
    const env = testEnv(PLUGINS)
    const engine = spawnEngine(env.configPath)
    try {
      await started(engine)
      assert.ok(existsSync(`${env.dbPath}.pid`), 'holds the lock')
      const r = await runCli(['jobs', 'enqueue', 'facts-py', '--config', env.configPath, '--json'])
      assert.equal(r.code, 0, r.stderr)
      const id = r.json().job_id
      // How soon is a timing claim (bench/); here: it is picked up at all, without a restart or a nudge.
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
      await waitFor('the end line', () => engine.err().includes(`job=${id}`) && /job end .*status=succeeded/.test(engine.err()))
      assert.match(engine.err(), new RegExp(`INFO  job start plugin=facts-py command=poll job=${id} attempt=1`))
      assert.match(engine.err(), new RegExp(`INFO  job end plugin=facts-py command=poll job=${id} attempt=1 status=succeeded duration_ms=\\d+`))
      const status = await runCli(['jobs', 'status', '--db', env.dbPath, '--json'])
      assert.deepEqual(status.json().counts, [{status: 'succeeded', count: 1}])
      const facts = await runCli(['facts', 'facts-py', '--db', env.dbPath, '--json'])
      assert.equal(facts.json().facts[0].fact.label, 'e2e')
    } finally {
      engine.child.kill('SIGTERM')
    }
    assert.equal(await engine.exited, 0)
    assert.match(engine.err(), /engine stopped/)
    assert.doesNotMatch(engine.err(), /checkpoint thread failed/, 'the built engine finds its checkpoint thread file')
    assert.equal(existsSync(`${env.dbPath}.pid`), false, 'the lock is released')
  })

  it('a second engine on the same database is refused, naming the PID; a stale lock is taken over', async () => {
    const env = testEnv(PLUGINS)
    writeFileSync(`${env.dbPath}.pid`, JSON.stringify({pid: 999_999, started_at: null, host: (await import('node:os')).hostname(), db: env.dbPath}))
    const first = spawnEngine(env.configPath)
    try {
      await started(first)
      const second = await runCli(['engine', 'start', '--config', env.configPath])
      assert.equal(second.code, 1)
      assert.match(second.stderr, new RegExp(`another engine \\(PID ${first.child.pid} on .*\\) is already running`))
    } finally {
      first.child.kill('SIGINT')
    }
    assert.equal(await first.exited, 0)
  })

  it('SIGKILL while a job runs: the restarted engine recovers it and runs it again', async () => {
    const env = testEnv(PLUGINS)
    const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 1.5}, {maxAttempts: 3})
    const first = spawnEngine(env.configPath)
    await started(first)
    await waitFor('the job to run', () => jobRow(env.db, id).status === 'running')
    first.child.kill('SIGKILL')
    await first.exited
    assert.equal(jobRow(env.db, id).status, 'running', 'left running by the dead engine')
    const second = spawnEngine(env.configPath)
    try {
      await started(second)
      assert.match(second.err(), /recovered jobs left running by a previous engine requeued=1/)
      const job = await waitTerminal(env, id)
      assert.equal(job.status, 'succeeded')
      assert.equal(job.attempt, 2)
      const log = rows(env.db, 'SELECT attempt, status, last_error FROM job_log WHERE job_id = ? ORDER BY attempt', id)
      assert.equal(log.length, 2)
      assert.deepEqual([log[0].attempt, log[0].status], [1, 'failed'])
      assert.match(log[0].last_error, /interrupted/)
      assert.deepEqual([log[1].attempt, log[1].status], [2, 'succeeded'])
      assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM config_snapshots')[0].n, 2, 'a snapshot per start')
    } finally {
      second.child.kill('SIGTERM')
      await second.exited
    }
  })

  it('with fewer workers than CPUs it confines itself, its helper and its plugins to max_workers of them', async (t) => {
    const allowed = allowedCpus()
    if (!allowed || allowed.length < 2) return t.skip('needs a process allowed on 2 CPUs or more')
    for (const off of [false, true]) {
      const env = testEnv(PLUGINS, {service: `  max_workers: 1\n${off ? '  cpu_affinity: off\n' : ''}`})
      const engine = spawnEngine(env.configPath)
      try {
        await started(engine)
        const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 2})
        const plugin = await waitFor('the plugin to start', () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ?', id)[0]?.plugin_pid)
        const helper = parentPid(plugin)!
        const label = off ? 'cpu_affinity: off' : 'auto'
        // Which CPU depends on other engines running on the machine (the next test); how many does not.
        const cpus: string | undefined = off ? formatCpuList(allowed) : /cpus=(\d+) /.exec(engine.err())?.[1]
        assert.ok(cpus !== undefined && (off || allowed.includes(Number(cpus))), `${label}: the log names one allowed CPU:\n${engine.err()}`)
        assert.deepEqual([...new Set(threadCpus(engine.child.pid!).values())], [cpus], `${label}: every engine thread`)
        assert.equal(allowedCpus(helper)?.join(','), parseCpuList(cpus).join(','), `${label}: the spawn helper`)
        assert.equal(allowedCpus(plugin)?.join(','), parseCpuList(cpus).join(','), `${label}: the plugin`)
        assert.equal(engine.err().includes('engine confined to the CPUs its workers need'), !off, engine.err())
        assert.equal((await waitTerminal(env, id)).status, 'succeeded')
      } finally {
        engine.child.kill('SIGTERM')
        assert.equal(await engine.exited, 0)
      }
    }
  })

  it('ps shows the engine by name, and other engines see the CPUs it keeps to', async (t) => {
    const allowed = allowedCpus()
    if (!allowed || allowed.length < 2) return t.skip('needs a process allowed on 2 CPUs or more')
    const env = testEnv('', {service: '  max_workers: 1\n'})
    const engine = spawnEngine(env.configPath)
    try {
      await started(engine)
      assert.match(readFileSync(`/proc/${engine.child.pid}/cmdline`, 'utf8'), /^ductile engine start --config \S+config\.yaml/)
      const [cpu] = allowedCpus(engine.child.pid!)!
      assert.ok(otherEnginesCpus().includes(cpu), 'counted among the CPUs other engines keep to')
      // So the next engine's plan avoids it (the plan itself: test/engine/affinity.e2e.test.ts).
      assert.notDeepEqual(affinityPlan('auto', 1, allowed, [cpu]), [cpu])
    } finally {
      engine.child.kill('SIGTERM')
      assert.equal(await engine.exited, 0)
    }
  })

  it('--log-format json writes one JSON object per line', async () => {
    const env = testEnv(PLUGINS)
    const id = enqueue(env, 'echo-sh')
    const engine = spawnEngine(env.configPath, ['--log-format', 'json'])
    try {
      await waitTerminal(env, id)
      await waitFor('the end line', () => engine.err().includes('"msg":"job end"'))
    } finally {
      engine.child.kill('SIGTERM')
      assert.equal(await engine.exited, 0)
    }
    const lines = engine
      .err()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const end = lines.find((l) => l.msg === 'job end')
    assert.deepEqual([end.level, end.plugin, end.command, end.job, end.status], ['info', 'echo-sh', 'poll', id, 'succeeded'])
    assert.equal(typeof end.duration_ms, 'number')
    assert.ok(lines.every((l) => typeof l.time === 'string' && typeof l.msg === 'string'))
  })

  it('refuses an invalid config with exit 2, naming file and key', async () => {
    const env = testEnv(`plugins:\n  behave:\n    retry: {backoff_base: soon}\n`)
    const r = await runCli(['engine', 'start', '--config', env.configPath])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /config\.yaml: plugins\.behave\.retry\.backoff_base: invalid duration "soon"/)
  })
})

describe('operator writes: jobs enqueue, retry, cancel', () => {
  it('enqueue validates plugin, command and payload (exit 2) and stores a handle job as an event envelope', async () => {
    const env = testEnv(PLUGINS)
    const cfg = ['--config', env.configPath]
    const unknown = await runCli(['jobs', 'enqueue', 'nope', ...cfg])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown plugin nope/)
    assert.match(unknown.stderr, /known plugins: .*facts-py/)
    const cmd = await runCli(['jobs', 'enqueue', 'facts-py', '--command', 'frob', ...cfg, '--json'])
    assert.equal(cmd.code, 2)
    assert.match(cmd.json().error.message, /plugin facts-py has no command frob/)
    const notJson = await runCli(['jobs', 'enqueue', 'behave', '--payload', '{mode: ok}', ...cfg])
    assert.equal(notJson.code, 2)
    assert.match(notJson.stderr, /--payload is not valid JSON/)
    const arr = await runCli(['jobs', 'enqueue', 'behave', '--payload', '[1,2]', ...cfg])
    assert.equal(arr.code, 2)
    assert.match(arr.stderr, /must be a JSON object, not an array/)
    const bigFile = join(env.dir, 'big.json')
    writeFileSync(bigFile, JSON.stringify({blob: 'x'.repeat(10 * 1024 * 1024)}))
    const big = await runCli(['jobs', 'enqueue', 'behave', '--payload-file', bigFile, ...cfg])
    assert.equal(big.code, 2)
    assert.match(big.stderr, /is 10\.0 MiB; the limit is 1 MiB/)
    assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n, 0, 'nothing enqueued by the failures')

    const ok = await runCli(['jobs', 'enqueue', 'behave', '--payload', '{"mode":"ok"}', '--max-attempts', '2', ...cfg])
    assert.equal(ok.code, 0, ok.stderr)
    const id = ok.stdout.trim()
    const job = jobRow(env.db, id)
    assert.deepEqual(
      [job.plugin, job.command, job.status, job.max_attempts, job.submitted_by, job.payload],
      ['behave', 'poll', 'queued', 2, 'cli', '{"mode":"ok"}'],
    )
    assert.deepEqual(rows(env.db, 'SELECT from_status, to_status FROM job_transitions WHERE job_id = ?', id), [{from_status: null, to_status: 'queued'}])

    const h = await runCli(['jobs', 'enqueue', 'notifier', '--command', 'handle', '--payload', '{"message":"hi"}', ...cfg, '--json'])
    const env2 = JSON.parse(jobRow(env.db, h.json().job_id).payload)
    assert.equal(env2.type, 'cli.trigger')
    assert.equal(env2.source, 'cli')
    assert.deepEqual(env2.payload, {message: 'hi'})
    assert.match(env2.event_id, /^[0-9a-f-]{36}$/)

    const stdin = await runCli(['jobs', 'enqueue', 'behave', '--payload-file', '-', ...cfg, '--json'], {input: '{"mode":"error"}'})
    assert.equal(JSON.parse(jobRow(env.db, stdin.json().job_id).payload).mode, 'error')
  })

  it('dedupe: a key that succeeded within dedupe_ttl is not enqueued again', async () => {
    const env = testEnv(PLUGINS)
    const id = enqueue(env, 'echo-sh', {}, {dedupeKey: 'nightly'})
    env.db.query(`UPDATE job_queue SET status = 'succeeded', completed_at = ? WHERE id = ?`, ['2099-01-01 00:00:00.000', id])
    const again = await runCli(['jobs', 'enqueue', 'echo-sh', '--dedupe-key', 'nightly', '--config', env.configPath, '--json'])
    assert.equal(again.code, 0)
    assert.equal(again.json().status, 'deduplicated')
    assert.equal(again.json().job_id, id)
    assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n, 1)
  })

  it('retry makes a child job of a finished one; cancel kills a queued one; both refuse other states', async () => {
    const env = testEnv(PLUGINS)
    const done = enqueue(env, 'behave', {mode: 'ok'})
    env.db.query(`UPDATE job_queue SET status = 'failed', completed_at = '2026-11-27 10:00:00.000' WHERE id = ?`, [done])
    const queued = enqueue(env, 'behave', {mode: 'ok'})
    const db = ['--db', env.dbPath]
    const r = await runCli(['jobs', 'retry', done, ...db, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const child = jobRow(env.db, r.json().job_id)
    assert.deepEqual([child.parent_job_id, child.plugin, child.payload, child.status, child.submitted_by], [done, 'behave', '{"mode":"ok"}', 'queued', 'cli'])
    const refuse = await runCli(['jobs', 'retry', queued, ...db])
    assert.equal(refuse.code, 2)
    assert.match(refuse.stderr, /is queued; only finished jobs can be retried/)

    const c = await runCli(['jobs', 'cancel', queued, ...db])
    assert.equal(c.code, 0, c.stderr)
    const cj = jobRow(env.db, queued)
    assert.deepEqual([cj.status, cj.last_error], ['dead', 'cancelled by operator'])
    assert.deepEqual(rows(env.db, 'SELECT from_status, to_status, reason FROM job_transitions WHERE job_id = ? ORDER BY id', queued).pop(), {
      from_status: 'queued',
      to_status: 'dead',
      reason: 'cancelled by operator',
    })
    const again = await runCli(['jobs', 'cancel', queued, ...db, '--json'])
    assert.equal(again.code, 2)
    assert.equal(again.json().error.code, 'conflict')
    const missing = await runCli(['jobs', 'cancel', 'nope', ...db])
    assert.equal(missing.code, 1)
  })
})

describe('config check and plugins list', () => {
  it('a valid config: exit 0, plugins listed with commands and schedules', async () => {
    const env = testEnv(`plugins:
  facts-py:
    config: {label: x, api_token: hunter2}
    schedules:
      - {id: often, every: 5m}
  kitchen:
    uses: facts-py
    config: {label: kitchen}
`)
    const r = await runCli(['config', 'check', '--config', env.configPath, '--json'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.ok(r.json().plugins.includes('kitchen'))
    assert.equal(r.json().config.plugins['facts-py'].config.api_token, '***', 'secrets are masked')
    assert.doesNotMatch(r.stdout, /hunter2/)
    const allowed = allowedCpus() ?? []
    assert.deepEqual(
      r.json().engine,
      {spawn: 'python-helper', python: findOnPath('python3'), cpus: allowed.length > 2 ? formatCpuList(allowed.slice(0, 2)) : null},
      'what engine start would do here',
    )
    const human = await runCli(['config', 'check', '--config', env.configPath])
    assert.match(human.stdout, /engine start here: plugins started by the python helper \(.*python3\); (all CPUs|confined to CPU \S+ \(max_workers 2\))\./)
    const p = await runCli(['plugins', 'list', '--config', env.configPath])
    assert.match(p.stdout, /kitchen \(uses facts-py\)\s*│\s*2\.1\.0\s*│\s*poll, health/)
    assert.match(p.stdout, /often: every 5m → poll/)
  })

  it('spawn_helper: python without python3 on the PATH is an error; auto falls back and says so', async () => {
    const env = testEnv('', {service: '  max_workers: 1\n  spawn_helper: python\n'})
    const noPython = {PATH: tempDir('ductile-nopython-')}
    const r = await runCli(['config', 'check', '--config', env.configPath, '--json'], {env: noPython})
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(
      r
        .json()
        .errors.map((e: {path: string; message: string}) => `${e.path}: ${e.message}`)
        .join('\n'),
      /service\.spawn_helper: .*python3 is not on the PATH.*set service\.spawn_helper to auto or node/,
    )
    writeFileSync(env.configPath, readFileSync(env.configPath, 'utf8').replace('spawn_helper: python', 'spawn_helper: auto'))
    const auto = await runCli(['config', 'check', '--config', env.configPath, '--json'], {env: noPython})
    assert.equal(auto.code, 0, auto.stdout + auto.stderr)
    assert.equal(auto.json().engine.spawn, 'engine', 'one worker without python3: the engine spawns itself')
  })

  it('errors name file and key, exit 2; a plugin missing a required config key is refused', async () => {
    const env = testEnv(`plugins:
  facts-py:
    config: {}
    schedules:
      - {id: a, every: 5m}
      - {id: a, every: 10x}
  ghost: {}
bogus_top: 1
`)
    const r = await runCli(['config', 'check', '--config', env.configPath])
    assert.equal(r.code, 2)
    assert.match(r.stdout, /error: .*config\.yaml: plugins\.facts-py\.schedules\[1\]\.id: duplicate schedule id "a"/)
    assert.match(r.stdout, /error: .*plugins\.facts-py\.schedules\[1\]\.every: invalid duration "10x"/)
    assert.match(r.stdout, /error: .*plugins\.ghost: no plugin named ghost under plugin_roots/)
    assert.match(r.stdout, /warning: .*bogus_top: unknown key "bogus_top"/)
    const ok = testEnv(`plugins:\n  facts-py:\n    config: {}\n`)
    const m = await runCli(['config', 'check', '--config', ok.configPath, '--json'])
    assert.equal(m.code, 2)
    assert.match(m.json().errors[0].message, /plugin facts-py requires config key\(s\) label/)
  })
})
