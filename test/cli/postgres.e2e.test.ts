// stores: postgres
import assert from 'node:assert/strict'
import {existsSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {prune} from '../../src/queries/maintenance.js'
import {runCli} from '../helpers/cli.js'
import {tempDir} from '../helpers/db.js'
import {rows, startEngine, startedEngine, testEnv} from '../helpers/engine.js'
import {DAY, HOUR, ago, insertJob, insertLog} from '../helpers/fixtures.js'
import {freshPgUrl} from '../helpers/store.js'

/**
 * What is PostgreSQL's own in the CLI: choosing the store by URL, credentials never shown, the errors of a
 * server that is not there, db copy both ways, and what vacuum, backup, doctor and prune do there.
 */

/** The URL with a password in it (the test cluster trusts every login, so it connects all the same). */
const withPassword = (url: string, password: string) => {
  const u = new URL(url)
  u.password = password
  return u.toString()
}

describe('choosing PostgreSQL, and its credentials', () => {
  it('a password in --db or state.url is never printed: not in output, errors, logs or config_snapshots', async () => {
    const env = testEnv()
    const secret = 'hunter2-correct-horse'
    const url = withPassword(env.dbPath, secret)
    const info = await runCli(['db', 'info', '--db', url, '--json'])
    assert.equal(info.code, 0, info.stderr)
    assert.equal(info.json().path, env.dbPath, 'the URL without its password')
    const doctor = await runCli(['doctor', '--engine-optional', '--db', url])
    assert.match(doctor.stdout, /^postgres:\/\/postgres@.*: HEALTHY/)
    // A server that is not there: the error names the URL, without the password.
    const gone = withPassword('postgres://ductile@127.0.0.1:1/nowhere', secret)
    const refused = await runCli(['jobs', 'status', '--db', gone, '--json'])
    assert.equal(refused.code, 1)
    assert.equal(refused.json().error.code, 'db_unreachable')
    assert.match(refused.json().error.message, /postgres:\/\/ductile@127\.0\.0\.1:1\/nowhere/)
    // The engine, from state.url with the password in a ${VAR}.
    writeFileSync(env.configPath, `${env.state.replace(env.dbPath, env.dbPath.replace('postgres@', 'postgres:${DB_PASS}@'))}plugin_roots: []\n`)
    const engine = await startedEngine(env.configPath, [], {env: {DB_PASS: secret}})
    engine.child.kill('SIGTERM')
    assert.equal(await engine.exited, 0)
    assert.match(engine.err(), /engine started db=postgres:\/\/postgres@/)
    for (const text of [info.stdout, info.stderr, doctor.stdout, refused.stdout, refused.stderr, engine.err()]) assert.doesNotMatch(text, new RegExp(secret))
    const snapshots = rows(env.db, 'SELECT sanitized_config FROM config_snapshots')
    assert.equal(snapshots.length, 1)
    assert.doesNotMatch(JSON.stringify(snapshots), new RegExp(secret))
  })

  it('a database that does not exist, and state.url beside state.path: clear errors, exit codes cron can trust', async () => {
    const missing = new URL(freshPgUrl({schema: false}))
    missing.pathname = '/no_such_database'
    const r = await runCli(['jobs', 'status', '--db', missing.toString(), '--json'])
    assert.equal(r.code, 1)
    assert.equal(r.json().error.code, 'db_missing')
    assert.match(r.json().error.hint, /createdb/)
    const empty = freshPgUrl({schema: false})
    const uninit = await runCli(['jobs', 'status', '--db', empty, '--json'])
    assert.equal(uninit.json().error.code, 'db_uninitialised')
    const dir = tempDir()
    const cfg = join(dir, 'config.yaml')
    writeFileSync(cfg, `state:\n  path: ./x.db\n  url: ${empty}\nplugin_roots: []\n`)
    const both = await runCli(['config', 'check', '--config', cfg, '--json'])
    assert.equal(both.code, 2)
    assert.match(both.stdout, /give state\.url or state\.path, not both/)
    writeFileSync(cfg, 'state:\n  url: mysql://nope\nplugin_roots: []\n')
    const bad = await runCli(['config', 'check', '--config', cfg, '--json'])
    assert.equal(bad.code, 2)
    assert.deepEqual(
      bad.json().errors.map((e: {path: string; message: string}) => `${e.path}: ${e.message}`),
      ['state.url: must be a PostgreSQL URL: postgres://USER@HOST[:PORT]/DATABASE'],
    )
  })
})

describe('db copy', () => {
  it('PostgreSQL to a SQLite file and back to a new PostgreSQL database: every row, the same', async () => {
    const env = testEnv()
    const engine = await startEngine(env)
    await engine.stop()
    for (let i = 0; i < 23; i++) insertJob(env.db, {status: i % 3 ? 'succeeded' : 'failed', completed_at: ago(i * HOUR)})
    for (let i = 0; i < 40; i++) insertLog(env.db, {completed_at: ago(i * HOUR), stderr: i === 3 ? 'a NUL \u0000 byte' : null})
    const file = join(tempDir(), 'copy.db')
    const out = await runCli(['db', 'copy', '--from', env.dbPath, '--to', file, '--batch-size', '7', '--json'])
    assert.equal(out.code, 0, out.stderr)
    const back = freshPgUrl({schema: false})
    const again = await runCli(['db', 'copy', '--from', file, '--to', back, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(again.json().tables, out.json().tables)
    assert.equal(out.json().tables.find((t: {table: string}) => t.table === 'job_log').rows, 40)
    for (const table of ['job_queue', 'job_log', 'job_transitions', 'engines', 'config_snapshots', 'storage_sequences']) {
      const a = (await runCli(['db', 'info', '--db', env.dbPath, '--json'])).json().tables.find((t: {table: string}) => t.table === table).rows
      const b = (await runCli(['db', 'info', '--db', back, '--json'])).json().tables.find((t: {table: string}) => t.table === table).rows
      assert.equal(b, a, table)
    }
    const list = (db: string) => runCli(['jobs', 'logs', '--db', db, '--limit', '100', '--json']).then((r) => r.json())
    assert.deepEqual(await list(back), await list(env.dbPath), 'the same rows, in the same order')
    // The identity sequences go on after the copied ids: a new transition gets a new id.
    const enq = await runCli(['jobs', 'enqueue', 'echo-sh', '--db', back, '--config', env.configPath, '--json'])
    assert.equal(enq.code, 0, enq.stderr)
  })

  it('refuses a destination that is not new, and a source an engine still writes', async () => {
    const env = testEnv()
    const r = await runCli(['db', 'copy', '--from', join(tempDir(), 'none.db'), '--to', env.dbPath])
    assert.equal(r.code, 1, 'a missing source')
    const full = await runCli(['db', 'copy', '--from', env.dbPath, '--to', env.dbPath])
    assert.equal(full.code, 2)
    const other = freshPgUrl({schema: true})
    const notEmpty = await runCli(['db', 'copy', '--from', env.dbPath, '--to', other, '--json'])
    assert.equal(notEmpty.json().error.code, 'conflict')
    const engine = await startEngine(env)
    try {
      const busy = await runCli(['db', 'copy', '--from', env.dbPath, '--to', join(tempDir(), 'x.db'), '--json'])
      assert.equal(busy.json().error.code, 'engine_running')
      assert.match(busy.json().error.hint, /--force/)
    } finally {
      await engine.stop()
    }
  })
})

describe('reading and checking a PostgreSQL database from the CLI', () => {
  it('watch --once counts the engines; metrics give the database size; db check and db migrate bring back a missing table', async () => {
    const env = testEnv()
    const engines = [await startEngine(env), await startEngine(env)]
    try {
      const w = await runCli(['watch', '--once', '--db', env.dbPath, '--json'])
      assert.equal(w.code, 0, w.stderr)
      assert.deepEqual([w.json().engine.state, w.json().engine.count, w.json().engine.silent], ['running', 2, 0])
      const human = await runCli(['watch', '--once', '--db', env.dbPath])
      assert.match(human.stdout, /2 engines running/)
    } finally {
      await Promise.all(engines.map((e) => e.stop()))
    }
    // Registered as running: one beating on another host, one silent for ten minutes (a host that died, no
    // live engine to declare it dead yet). The silent one is not counted as running.
    const register = (id: string, beat: string) =>
      env.db.query(`INSERT INTO engines (id, host, pid, pid_namespace, started_at, heartbeat_at, version) VALUES (?, 'elsewhere', 77, NULL, ?, ?, 'test')`, [
        id,
        ago(HOUR),
        beat,
      ])
    register('gone', ago(600_000))
    const silent = await runCli(['watch', '--once', '--db', env.dbPath, '--json'])
    assert.deepEqual([silent.json().engine.state, silent.json().engine.count, silent.json().engine.silent], ['silent', 0, 1])
    assert.match((await runCli(['watch', '--once', '--db', env.dbPath])).stdout, /no engine beating: 1 silent past the lease/)
    register('beating', ago(1000))
    const one = await runCli(['watch', '--once', '--db', env.dbPath, '--json'])
    assert.deepEqual([one.json().engine.state, one.json().engine.count, one.json().engine.silent, one.json().engine.host], ['running', 1, 1, 'elsewhere'])
    assert.match((await runCli(['watch', '--once', '--db', env.dbPath])).stdout, /engine PID 77 running on elsewhere, 1 silent/)
    const m = await runCli(['metrics', '--db', env.dbPath])
    assert.equal(m.code, 0, m.stderr)
    const size = /^ductile_db_size_bytes (\d+)$/m.exec(m.stdout)
    assert.ok(size && Number(size[1]) > 0, 'the database size, from pg_database_size')
    // A database that lost a table and the record of the migration that made it.
    env.db.exec('DROP TABLE engines; DELETE FROM schema_migrations WHERE version = 7')
    const check = await runCli(['db', 'check', '--db', env.dbPath, '--json'])
    assert.equal(check.code, 1)
    assert.match(check.stdout, /missing table engines/)
    const mig = await runCli(['db', 'migrate', '--db', env.dbPath, '--json'])
    assert.equal(mig.code, 0, mig.stderr)
    assert.deepEqual(
      mig.json().applied.map((a: {version: number}) => a.version),
      [7],
    )
    assert.equal((await runCli(['db', 'check', '--db', env.dbPath])).code, 0)
  })
})

describe('maintenance on PostgreSQL', () => {
  it('vacuum explains autovacuum and runs VACUUM (ANALYZE) when asked; backup points to pg_dump', async () => {
    const env = testEnv()
    insertJob(env.db)
    const explain = await runCli(['vacuum', '--db', env.dbPath])
    assert.equal(explain.code, 0, explain.stderr)
    assert.match(explain.stdout, /autovacuum reclaims dead rows/)
    const analyze = await runCli(['vacuum', '--analyze', '--db', env.dbPath, '--json'])
    assert.equal(analyze.code, 0, analyze.stderr)
    assert.equal(analyze.json().mode, 'postgres-analyze')
    const jobQueue = analyze.json().tables.find((t: {table: string}) => t.table === 'job_queue')
    assert.ok(jobQueue.lastVacuum, 'VACUUM ran on job_queue')
    const full = await runCli(['vacuum', '--full', '--db', env.dbPath])
    assert.equal(full.code, 2)
    const backup = await runCli(['db', 'backup', '--to', join(tempDir(), 'b.db'), '--db', env.dbPath, '--json'])
    assert.equal(backup.code, 2)
    assert.match(backup.json().error.hint, /pg_dump --format=custom/)
  })

  it('prune deletes old rows in batches and keeps the newest failure', async () => {
    const env = testEnv()
    for (let i = 0; i < 30; i++) insertLog(env.db, {completed_at: ago(40 * DAY + i * HOUR)})
    insertLog(env.db, {status: 'failed', completed_at: ago(50 * DAY)})
    insertLog(env.db, {completed_at: ago(HOUR)})
    const dry = await runCli(['prune', '--table', 'job_log', '--dry-run', '--db', env.dbPath, '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual([dry.json().tables[0].deleted, dry.json().tables[0].kept], [30, 1])
    // Seven rows in the first batch (the size then adapts to the time each takes): each batch is its own short
    // transaction, by ctid.
    const r = await prune(env.db, {tables: ['job_log'], batchSize: 7})
    const t = r.tables[0]
    assert.deepEqual([t?.deleted, t?.kept], [30, 1])
    assert.ok((t?.batches ?? 0) >= 3, `${t?.batches} batches`)
    assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_log')[0]?.n, 2)
    const cli = await runCli(['prune', '--db', env.dbPath, '--json'])
    assert.equal(cli.code, 0, cli.stderr)
    assert.equal(cli.json().total_deleted, 0)
  })

  it('doctor: engines alive, replication, bloat; an engine silent past the lease is named', async () => {
    const env = testEnv()
    const none = await runCli(['doctor', '--db', env.dbPath, '--json'])
    const check = (r: typeof none, name: string) => r.json().checks.find((c: {name: string}) => c.name === name)
    assert.equal(check(none, 'engines').status, 'fail')
    assert.equal(check(none, 'replication').status, 'ok')
    assert.equal(check(none, 'bloat').status, 'ok')
    assert.equal(check(none, 'journal_mode'), undefined, 'no SQLite file checks')
    const engine = await startEngine(env)
    try {
      const alive = await runCli(['doctor', '--db', env.dbPath, '--json'])
      assert.equal(check(alive, 'engines').status, 'ok')
      assert.match(check(alive, 'engines').detail, /1 engine\(s\) alive/)
      env.db.query(`INSERT INTO engines (id, host, pid, started_at, heartbeat_at, version) VALUES ('old', 'elsewhere', 1, ?, ?, 'x')`, [ago(DAY), ago(DAY)])
      const silent = await runCli(['doctor', '--db', env.dbPath, '--json'])
      assert.equal(check(silent, 'engines').status, 'warn')
      assert.match(check(silent, 'engines').detail, /silent for longer than the lease.*elsewhere pid 1/)
    } finally {
      await engine.stop()
    }
    assert.equal(existsSync(`${env.dbPath}.pid`), false, 'no lock file for a URL')
  })
})
