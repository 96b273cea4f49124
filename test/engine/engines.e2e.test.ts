// stores: postgres
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {processAlive} from '../../src/lib/proc.js'
import {formatTs} from '../../src/schema/time.js'
import {ROOT} from '../helpers/cli.js'
import {enqueue, rows, spawnEngine, startEngine, startedEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'
import {ago} from '../helpers/fixtures.js'
import {freshPgUrl} from '../helpers/store.js'

/**
 * Many engines on one PostgreSQL database: one queue, global parallelism, one fire per schedule slot, and
 * recovery of a dead engine's jobs by a live one (never of a live one's). Only on PostgreSQL: a SQLite file
 * has one engine (the lock), which test/trust covers.
 */

/** Another process's enqueue (test/fixtures/enqueue.ts): prints its EnqueueResult. */
const ENQUEUE_SCRIPT = join(ROOT, 'test', 'fixtures', 'enqueue.ts')

const spans = (env: ReturnType<typeof testEnv>, plugin: string) =>
  rows(env.db, `SELECT started_at, completed_at FROM job_queue WHERE plugin = ? ORDER BY started_at`, plugin) as {started_at: string; completed_at: string}[]

describe('engines sharing one queue', () => {
  it('every job runs once; a global parallelism of 1 holds across engines; a concurrency-safe plugin runs on both', async () => {
    const env = testEnv('plugins:\n  behave:\n    parallelism: 1\n', {service: '  max_workers: 2\n'})
    const a = await startEngine(env)
    const b = await startEngine(env)
    try {
      const serial = Array.from({length: 6}, () => enqueue(env, 'behave', {mode: 'sleep', seconds: 0.15}))
      const wide = Array.from({length: 12}, () => enqueue(env, 'echo-sh'))
      for (const id of [...serial, ...wide]) assert.equal((await waitTerminal(env, id, 30_000)).status, 'succeeded')
      // One attempt each: no job ran twice.
      const attempts = rows(env.db, 'SELECT job_id, COUNT(*) AS n FROM job_attempts GROUP BY job_id HAVING COUNT(*) > 1')
      assert.deepEqual(attempts, [])
      // parallelism: 1 across both engines: no two behave jobs overlap on record.
      const s = spans(env, 'behave')
      for (let i = 1; i < s.length; i++) assert.ok((s[i]?.started_at ?? '') >= (s[i - 1]?.completed_at ?? ''), `behave jobs ${i - 1} and ${i} overlap`)
      const byEngine = rows(env.db, `SELECT DISTINCT a.engine_id FROM job_attempts a JOIN job_queue q ON q.id = a.job_id WHERE q.plugin = 'echo-sh'`)
      assert.equal(byEngine.length, 2, 'both engines claimed echo-sh jobs (two workers each, twelve jobs)')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
    const engines = rows(env.db, 'SELECT stopped_at, stop_reason FROM engines')
    assert.equal(engines.length, 2)
    for (const e of engines) assert.deepEqual([typeof e.stopped_at, e.stop_reason], ['string', 'stopped'])
  })

  it('jobs that share a dedupe key run one at a time across engines; other jobs run beside them', async () => {
    const env = testEnv('', {service: '  max_workers: 2\n'})
    const a = await startEngine(env)
    const b = await startEngine(env)
    try {
      // Enqueued before any succeeds: the enqueue's dedupe window finds nothing, the claim serialises them.
      const keyed = Array.from({length: 6}, () => enqueue(env, 'behave', {mode: 'sleep', seconds: 0.15}, {dedupeKey: 'one-key'}))
      const free = Array.from({length: 6}, () => enqueue(env, 'behave', {mode: 'sleep', seconds: 0.15}))
      for (const id of [...keyed, ...free]) assert.equal((await waitTerminal(env, id, 30_000)).status, 'succeeded')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
    const s = rows(env.db, `SELECT started_at, completed_at FROM job_queue WHERE dedupe_key = 'one-key' ORDER BY started_at`)
    for (let i = 1; i < s.length; i++) assert.ok(s[i]?.started_at >= s[i - 1]?.completed_at, `keyed jobs ${i - 1} and ${i} overlap`)
    const overlapping = rows(
      env.db,
      `SELECT COUNT(*) AS n FROM job_queue f JOIN job_queue k ON k.dedupe_key = 'one-key'
        WHERE f.dedupe_key IS NULL AND f.started_at < k.completed_at AND k.started_at < f.completed_at`,
    )[0]?.n
    assert.ok(overlapping > 0, 'jobs without the key ran while keyed ones did')
  })

  it('facts written by two engines at once: one seq without gaps or repeats, and the state is the last fact', async () => {
    const env = testEnv('plugins:\n  facts-py:\n    config: {label: shared}\n', {service: '  max_workers: 2\n'})
    const a = await startEngine(env)
    const b = await startEngine(env)
    try {
      const ids = Array.from({length: 24}, () => enqueue(env, 'facts-py'))
      for (const id of ids) assert.equal((await waitTerminal(env, id, 30_000)).status, 'succeeded')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
    const byEngine = rows(env.db, `SELECT DISTINCT engine_id FROM job_attempts`)
    assert.equal(byEngine.length, 2, 'both engines ran facts-py jobs')
    const facts = rows(env.db, 'SELECT seq, fact_json FROM plugin_facts ORDER BY seq')
    assert.deepEqual(
      facts.map((f) => f.seq),
      Array.from({length: 24}, (_, i) => i + 1),
    )
    assert.equal(rows(env.db, `SELECT value FROM storage_sequences WHERE name = 'plugin_facts'`)[0]?.value, 24)
    // The state is written in the facts' seq order: what it holds is the fact with the highest seq.
    assert.equal(rows(env.db, `SELECT state FROM plugin_state WHERE plugin_name = 'facts-py'`)[0]?.state, facts[23]?.fact_json)
  })

  it('a 1-second schedule fires once per slot, whatever the number of engines', async () => {
    const env = testEnv('plugins:\n  echo-sh:\n    schedules:\n      - {id: tick, every: 1s}\n', {service: '  tick_interval: 100ms\n'})
    const engines = await Promise.all([startEngine(env), startEngine(env), startEngine(env)])
    try {
      await waitFor('five fires', () => rows(env.db, `SELECT COUNT(*) AS n FROM schedule_decisions WHERE decision = 'fired'`)[0]?.n >= 5, 30_000)
    } finally {
      await Promise.all(engines.map((e) => e.stop()))
    }
    const twice = rows(env.db, `SELECT slot, COUNT(*) AS n FROM schedule_decisions WHERE decision = 'fired' GROUP BY slot HAVING COUNT(*) > 1`)
    assert.deepEqual(twice, [], 'no slot fired twice')
    const fired = rows(env.db, `SELECT COUNT(*) AS n FROM schedule_decisions WHERE decision = 'fired'`)[0]?.n
    assert.equal(rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE plugin = 'echo-sh'`)[0]?.n, fired, 'one job per fire')
  })

  it('an enqueue that dedupes against outstanding jobs waits for another one of the same key to commit', async () => {
    const env = testEnv()
    const input = {
      plugin: 'echo-sh',
      command: 'poll',
      payload: {},
      submittedBy: 'test',
      maxAttempts: 1,
      dedupeKey: 'reading-7',
      dedupeTtlMs: 0,
      dedupeOutstanding: true,
    }
    const release = join(env.dir, 'release')
    // One process enqueues and holds its transaction open; another enqueues the same key meanwhile.
    const holder = enqueuer(env.dbPath, input, release)
    await waitFor('the first enqueue to hold its transaction', () => holder.out().startsWith('held\n'))
    const second = enqueuer(env.dbPath, input)
    // The second waits on the key's lock (no row of the first is visible to it yet) …
    await waitFor('the second enqueue to wait for the key', () => rows(env.db, `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)[0], 20_000)
    writeFileSync(release, '')
    assert.deepEqual(await Promise.all([holder.exited, second.exited]), [0, 0])
    // … and once the first commits, finds its job.
    const first = JSON.parse(holder.out().slice('held\n'.length))
    const theirs = JSON.parse(second.out())
    assert.equal(first.status, 'enqueued')
    assert.deepEqual([theirs.status, theirs.existingJobId], ['deduplicated', first.job.id])
    assert.equal(rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE dedupe_key = 'reading-7'`)[0]?.n, 1)
  })
})

/** test/fixtures/enqueue.ts in a process of its own. */
function enqueuer(db: string, input: object, hold?: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', ENQUEUE_SCRIPT, db, JSON.stringify(input), ...(hold ? [hold] : [])], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  return {out: () => out, exited: new Promise<number | null>((r) => child.on('exit', r))}
}

describe('dead engines', () => {
  it('an engine killed with SIGKILL: a live engine on the host kills its plugin and reruns the job (no waiting for the lease)', async () => {
    // Plugins started by the engine itself (no helper, which would end them with the engine): the worst case.
    const env = testEnv('', {service: '  engine_lease: 1h\n  spawn_helper: off\n'})
    const file = join(env.dir, 'release')
    const victim = await startedEngine(env.configPath)
    const id = enqueue(env, 'behave', {mode: 'wait_file', file}, {maxAttempts: 2})
    const first = await waitFor(
      'the plugin to start',
      () => rows(env.db, 'SELECT plugin_pid, engine_id FROM job_attempts WHERE job_id = ? AND plugin_pid IS NOT NULL', id)[0],
    )
    victim.child.kill('SIGKILL')
    await victim.exited
    assert.ok(processAlive(first.plugin_pid), 'the plugin outlives its engine')
    const rescuer = await startEngine(env)
    try {
      await waitFor('the job to be requeued', () => rows(env.db, `SELECT 1 FROM job_queue WHERE id = ? AND attempt = 2`, id)[0])
      assert.equal(processAlive(first.plugin_pid), false, "the dead engine's plugin was killed before its job was requeued")
      writeFileSync(file, 'go')
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
    } finally {
      await rescuer.stop()
    }
    const dead = rows(env.db, 'SELECT stopped_at, stop_reason FROM engines WHERE id = ?', first.engine_id)[0]
    assert.match(dead?.stop_reason ?? '', /is gone from .*; recovered by engine/)
    const log = rows(env.db, `SELECT status, last_error FROM job_log WHERE job_id = ? ORDER BY attempt`, id)
    assert.deepEqual(
      log.map((l) => l.status),
      ['failed', 'succeeded'],
    )
    assert.match(log[0]?.last_error ?? '', /^interrupted: engine .* is gone from/)
  })

  it("an engine on another host silent past the lease loses its jobs; a live one's are never taken", async () => {
    const env = testEnv('', {service: '  engine_lease: 2s\n'})
    const old = ago(60_000)
    const fresh = formatTs(new Date(Date.now() + 3_600_000))
    env.db.query(
      `INSERT INTO engines (id, host, pid, started_at, heartbeat_at, version) VALUES ('silent', 'elsewhere', 4242, ?, ?, 'x'), ('busy', 'elsewhere', 4243, ?, ?, 'x')`,
      [old, old, old, fresh],
    )
    const silentJob = enqueue(env, 'echo-sh', {}, {maxAttempts: 2})
    const busyJob = enqueue(env, 'echo-sh', {}, {maxAttempts: 2})
    for (const [job, engine] of [
      [silentJob, 'silent'],
      [busyJob, 'busy'],
    ]) {
      env.db.query(`UPDATE job_queue SET status = 'running', started_at = ? WHERE id = ?`, [old, job])
      env.db.query(`INSERT INTO job_attempts (job_id, attempt, created_at, engine_pid, engine_id) VALUES (?, 1, ?, 4242, ?)`, [job, old, engine])
    }
    const engine = await startEngine(env)
    try {
      assert.equal((await waitTerminal(env, silentJob)).status, 'succeeded')
      // Two heartbeats of the live engine later, the busy engine still has its job.
      const beats = () => rows(env.db, `SELECT heartbeat_at FROM engines WHERE host <> 'elsewhere' AND stopped_at IS NULL`)[0]?.heartbeat_at
      const first = await waitFor('a heartbeat', beats)
      const second = await waitFor('another heartbeat', () => (beats() > first ? beats() : null))
      await waitFor('a third heartbeat', () => beats() > second)
      assert.equal(rows(env.db, 'SELECT status FROM job_queue WHERE id = ?', busyJob)[0]?.status, 'running')
      assert.equal(rows(env.db, 'SELECT stopped_at FROM engines WHERE id = ?', 'busy')[0]?.stopped_at, null)
    } finally {
      await engine.stop()
    }
    assert.match(rows(env.db, 'SELECT stop_reason FROM engines WHERE id = ?', 'silent')[0]?.stop_reason, /silent for longer than the lease \(2000 ms\)/)
  })

  it('an engine declared dead by the others kills its plugins and stops', async () => {
    const env = testEnv('', {service: '  engine_lease: 1s\n'})
    const file = join(env.dir, 'never')
    let lost = ''
    const engine = await startEngine(env, {onLost: (why) => (lost = why)})
    const id = enqueue(env, 'behave', {mode: 'wait_file', file}, {maxAttempts: 2})
    const attempt = await waitFor(
      'the plugin to start',
      () => rows(env.db, 'SELECT plugin_pid, engine_id FROM job_attempts WHERE job_id = ? AND plugin_pid IS NOT NULL', id)[0],
    )
    // What a live engine writes when it finds this one silent past the lease.
    env.db.query(`UPDATE engines SET stopped_at = ?, stop_reason = 'declared dead by a test' WHERE id = ?`, [formatTs(new Date()), attempt.engine_id])
    await waitFor('the engine to learn it', () => lost)
    assert.match(lost, /declared this engine .* dead/)
    await engine.stop()
    assert.equal(processAlive(attempt.plugin_pid), false, 'its plugin was killed: the job may run elsewhere now')
    assert.equal(existsSync(file), false)
  })
})

describe('a lost connection', () => {
  it('the server ends every connection of a running engine: it connects again and goes on claiming', async () => {
    const env = testEnv()
    const engine = await startEngine(env)
    try {
      assert.equal((await waitTerminal(env, enqueue(env, 'echo-sh'))).status, 'succeeded')
      // What a server restart or an operator's pg_terminate_backend does to the engine's two connections.
      const ended = rows(
        env.db,
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'ductile engine%'`,
      )
      assert.equal(ended.length, 2, 'its queries and its LISTEN')
      const id = enqueue(env, 'echo-sh')
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
      await waitFor(
        'the LISTEN connection to be back',
        () => rows(env.db, `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'ductile engine% (listen)'`)[0],
      )
      assert.equal((await waitTerminal(env, enqueue(env, 'echo-sh'))).status, 'succeeded')
      assert.doesNotMatch(env.logs.join('\n'), /lost its lease/)
    } finally {
      await engine.stop()
    }
  })
})

describe('credentials', () => {
  it('the HTTP listeners connect with the URL the engine was given, password included (messages show it without)', async () => {
    const env = testEnv()
    const u = new URL(env.dbPath)
    u.password = 'hunter2-correct-horse'
    const engine = await startEngine({...env, dbPath: u.toString()})
    try {
      assert.equal(engine.db.path, env.dbPath, 'what messages show')
      assert.equal(engine.httpDeps().dbPath, u.toString(), 'what the listeners connect with')
    } finally {
      await engine.stop()
    }
  })
})

describe('engine processes on one database', () => {
  it('two `engine start` processes run side by side (no lock on PostgreSQL) and both stop cleanly', async () => {
    const env = testEnv()
    const a = await startedEngine(env.configPath)
    const b = spawnEngine(env.configPath)
    await waitFor('the second engine to start', () => b.err().includes('engine started') || b.child.exitCode !== null, 20_000)
    assert.match(b.err(), /engine started/)
    const id = enqueue(env, 'echo-sh')
    assert.equal((await waitTerminal(env, id)).status, 'succeeded')
    a.child.kill('SIGTERM')
    b.child.kill('SIGTERM')
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0])
    assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM engines WHERE stopped_at IS NULL')[0]?.n, 0)
  })

  it('three engines started at once on an empty database create its tables once, and all run', async () => {
    const env = testEnv()
    const empty = freshPgUrl({schema: false})
    writeFileSync(env.configPath, readFileSync(env.configPath, 'utf8').replace(env.dbPath, empty))
    const engines = [spawnEngine(env.configPath), spawnEngine(env.configPath), spawnEngine(env.configPath)]
    try {
      for (const e of engines) await waitFor('an engine to start', () => e.err().includes('engine started') || e.child.exitCode !== null, 30_000)
      for (const e of engines) assert.match(e.err(), /engine started/, e.err())
      assert.equal(engines.filter((e) => e.err().includes('created database')).length >= 1, true)
    } finally {
      for (const e of engines) e.child.kill('SIGTERM')
    }
    assert.deepEqual(await Promise.all(engines.map((e) => e.exited)), [0, 0, 0])
  })
})
