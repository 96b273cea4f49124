import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {prune} from '../../src/queries/maintenance.js'
import {openDb} from '../../src/schema/db.js'
import {ROOT, runCli} from '../helpers/cli.js'
import {freshDb} from '../helpers/db.js'
import {DAY, HOUR, ago, insertAttempt, insertBreakerTransition, insertFact, insertJob, insertLog, insertTransition} from '../helpers/fixtures.js'
import {rows, waitFor} from '../helpers/engine.js'
import {lite} from '../helpers/store.js'

const S = 1000

describe('prune: retention boundaries (injected clock)', () => {
  it('per table, a row one second inside the window stays and one second outside goes', async () => {
    const {db} = freshDb()
    const now = Date.now()
    const at = (ms: number) => ago(ms, now)
    const keep: string[] = []
    const drop: string[] = []
    keep.push(insertLog(db, {completed_at: at(30 * DAY - S)}).id)
    drop.push(insertLog(db, {completed_at: at(30 * DAY + S), status: 'succeeded'}).id)
    keep.push(insertJob(db, {status: 'succeeded', completed_at: at(DAY - S)}).id)
    drop.push(insertJob(db, {status: 'dead', completed_at: at(DAY + S)}).id)
    const tIn = insertTransition(db, {job_id: 'gone-1', created_at: at(30 * DAY - S)})
    const tOut = insertTransition(db, {job_id: 'gone-2', created_at: at(30 * DAY + S)})
    const aIn = insertAttempt(db, {job_id: 'gone-3', created_at: at(30 * DAY - S)})
    const aOut = insertAttempt(db, {job_id: 'gone-4', created_at: at(30 * DAY + S)})
    const bIn = insertBreakerTransition(db, {created_at: at(90 * DAY - S)})
    const bOut = insertBreakerTransition(db, {created_at: at(90 * DAY + S)})
    const fact = insertFact(db, {created_at: at(400 * DAY)})
    const decision = (created: string) =>
      lite(db)
        .sqlite.prepare(
          `INSERT INTO schedule_decisions (plugin, schedule_id, decision, reason, created_at) VALUES ('p', 's', 'skipped', 'circuit_open', ?) RETURNING id`,
        )
        .get(created) as {id: number}
    const dIn = decision(at(30 * DAY - S))
    decision(at(30 * DAY + S))
    const hit = (created: string) =>
      lite(db)
        .sqlite.prepare(
          `INSERT INTO dedupe_hits (job_id, plugin, command, submitted_by, reason, created_at) VALUES ('j', 'p', 'poll', 'cli', 'dup', ?) RETURNING id`,
        )
        .get(created) as {id: number}
    const hIn = hit(at(30 * DAY - S))
    hit(at(30 * DAY + S))
    // Engines: one stopped past the retention goes; one stopped inside it, and a running one however old, stay.
    const engine = (id: string, started: string, stopped: string | null) =>
      db.query('INSERT INTO engines (id, host, pid, started_at, heartbeat_at, version, stopped_at) VALUES (?, ?, 1, ?, ?, ?, ?)', [
        id,
        'h',
        started,
        started,
        'x',
        stopped,
      ])
    engine('gone', at(40 * DAY), at(30 * DAY + S))
    engine('recent', at(40 * DAY), at(30 * DAY - S))
    engine('running', at(400 * DAY), null)
    const r = await prune(db, {clock: () => new Date(now)})
    assert.deepEqual(Object.fromEntries(r.tables.map((t) => [t.table, t.deleted])), {
      job_log: 1,
      job_queue: 1,
      job_transitions: 1,
      job_attempts: 1,
      circuit_breaker_transitions: 1,
      schedule_decisions: 1,
      dedupe_hits: 1,
      engines: 1,
    })
    assert.deepEqual(
      rows(db, 'SELECT id FROM engines ORDER BY id').map((x) => x.id),
      ['recent', 'running'],
    )
    assert.deepEqual(
      rows(db, 'SELECT id FROM schedule_decisions').map((x) => x.id),
      [dIn.id],
    )
    assert.deepEqual(
      rows(db, 'SELECT id FROM dedupe_hits').map((x) => x.id),
      [hIn.id],
    )
    const ids = (table: string) => rows(db, `SELECT id FROM ${table}`).map((x) => x.id)
    assert.deepEqual(ids('job_log'), [keep[0]])
    assert.deepEqual(ids('job_queue'), [keep[1]])
    assert.deepEqual(ids('job_transitions'), [tIn.id])
    assert.deepEqual(ids('job_attempts'), [aIn.id])
    assert.deepEqual(ids('circuit_breaker_transitions'), [bIn.id])
    assert.ok(!ids('job_transitions').includes(tOut.id) && !ids('job_attempts').includes(aOut.id) && !ids('circuit_breaker_transitions').includes(bOut.id))
    assert.deepEqual(ids('plugin_facts'), [fact.id], 'facts are never pruned')
  })

  it('never touches queued or running rows, nor the history of unfinished jobs', async () => {
    const {db} = freshDb()
    const q = insertJob(db, {status: 'queued', created_at: ago(40 * DAY), completed_at: ago(40 * DAY)})
    const r = insertJob(db, {status: 'running', created_at: ago(40 * DAY), started_at: ago(40 * DAY)})
    insertTransition(db, {job_id: q.id, created_at: ago(40 * DAY)})
    insertAttempt(db, {job_id: r.id, created_at: ago(40 * DAY)})
    const res = await prune(db)
    assert.equal(res.total_deleted, 0)
    assert.equal(rows(db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n, 2)
    assert.equal(rows(db, 'SELECT COUNT(*) AS n FROM job_transitions')[0].n, 1)
    assert.equal(rows(db, 'SELECT COUNT(*) AS n FROM job_attempts')[0].n, 1)
  })

  it('keeps the newest failed job_log row per (plugin, command) unless told not to', async () => {
    const {db} = freshDb()
    insertLog(db, {status: 'failed', plugin: 'a', completed_at: ago(60 * DAY)})
    const newestA = insertLog(db, {status: 'failed', plugin: 'a', completed_at: ago(50 * DAY), last_error: 'the last one'})
    const newestASync = insertLog(db, {status: 'failed', plugin: 'a', command: 'sync', completed_at: ago(70 * DAY)})
    insertLog(db, {status: 'succeeded', plugin: 'a', completed_at: ago(40 * DAY)})
    const r = await prune(db, {tables: ['job_log']})
    assert.equal(r.tables[0].deleted, 2)
    assert.equal(r.tables[0].kept, 2)
    assert.deepEqual(
      rows(db, 'SELECT id FROM job_log ORDER BY completed_at').map((x) => x.id),
      [newestASync.id, newestA.id],
    )
    const r2 = await prune(db, {tables: ['job_log'], keepLastFailure: false})
    assert.equal(r2.tables[0].deleted, 2)
    assert.equal(rows(db, 'SELECT COUNT(*) AS n FROM job_log')[0].n, 0)
  })

  it('keeps the newest failure of every plugin and command pair, found through the index', async () => {
    const {db} = freshDb()
    const want: string[] = []
    for (const plugin of ['a', 'b', 'c']) {
      for (const command of ['poll', 'handle', 'sync']) {
        if (plugin === 'b' && command === 'sync') continue // a pair that never failed
        for (let i = 0; i < 3; i++) {
          const row = insertLog(db, {status: 'failed', plugin, command, completed_at: ago((60 - i) * DAY)})
          if (i === 2) want.push(row.id)
        }
      }
    }
    // A pair whose newest failure is recent keeps nothing old.
    const recent = insertLog(db, {status: 'failed', plugin: 'c', command: 'poll', completed_at: ago(DAY)})
    want.splice(
      want.indexOf(
        rows(db, `SELECT id FROM job_log WHERE plugin = 'c' AND command = 'poll' AND completed_at < ? ORDER BY completed_at DESC LIMIT 1`, ago(30 * DAY))[0].id,
      ),
      1,
      recent.id,
    )
    await prune(db, {tables: ['job_log']})
    assert.deepEqual(
      rows(db, 'SELECT id FROM job_log')
        .map((x) => x.id)
        .sort(),
      want.sort(),
    )
  })

  it('leaves the connection as it found it (the engine prunes on its own handle)', async () => {
    const {db} = freshDb()
    db.tx(() => {
      for (let i = 0; i < 3000; i++) insertLog(db, {completed_at: ago(40 * DAY - i)})
    })
    const before = ['wal_autocheckpoint', 'cache_size', 'busy_timeout'].map((p) => lite(db).sqlite.pragma(p, {simple: true}))
    await prune(db, {tables: ['job_log'], batchSize: 500, batchTargetMs: 1000})
    assert.deepEqual(
      ['wal_autocheckpoint', 'cache_size', 'busy_timeout'].map((p) => lite(db).sqlite.pragma(p, {simple: true})),
      before,
    )
    assert.equal(lite(db).sqlite.inTransaction, false)
  })

  it('deletes in many short batches and leaves a small WAL', async () => {
    const {db} = freshDb()
    db.tx(() => {
      for (let i = 0; i < 12_000; i++) insertLog(db, {completed_at: ago(40 * DAY - i)})
    })
    const r = await prune(db, {tables: ['job_log'], batchSize: 1000, batchTargetMs: 1000})
    assert.equal(r.tables[0].deleted, 12_000)
    assert.ok(r.tables[0].batches >= 4, `batches: ${r.tables[0].batches}`)
    assert.equal(r.wal_bytes_after, 0, 'TRUNCATE checkpoint at the end')
  })
})

describe('ductile prune (CLI)', () => {
  it('reports per table; --dry-run deletes nothing; --json; --older-than with --table', async () => {
    const {db, path} = freshDb()
    for (let i = 0; i < 5; i++) insertLog(db, {completed_at: ago(10 * DAY + i * HOUR)})
    insertLog(db, {completed_at: ago(HOUR)})
    db.close()
    const dry = await runCli(['prune', '--db', path, '--older-than', '7d', '--table', 'job_log', '--dry-run', '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.equal(dry.json().dry_run, true)
    assert.equal(dry.json().tables[0].deleted, 5)
    const count = () => rows(freshHandle(path), 'SELECT COUNT(*) AS n FROM job_log')[0].n
    assert.equal(count(), 6, 'dry run deleted nothing')
    const human = await runCli(['prune', '--db', path, '--older-than', '7d', '--table', 'job_log'])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /job_log\s*│\s*5\s*│\s*0\s*│\s*7d/)
    assert.match(human.stdout, /Deleted 5 rows/)
    assert.equal(human.stderr, '', 'silent on stderr when not a terminal')
    assert.equal(count(), 1)
    const quiet = await runCli(['prune', '--db', path, '--quiet'])
    assert.equal(quiet.code, 0)
    assert.equal(quiet.stdout + quiet.stderr, '', '--quiet prints nothing on success')
  })

  it('--table is validated and the message lists the allowed names (exit 2); errors go to stderr with exit 1', async () => {
    const {db, path} = freshDb()
    db.close()
    const bad = await runCli(['prune', '--db', path, '--table', 'plugin_facts'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /Expected --table=plugin_facts to be one of: job_log, job_queue, job_transitions, job_attempts, circuit_breaker_transitions/)
    const missing = await runCli(['prune', '--db', `${path}.nope`, '--quiet'])
    assert.equal(missing.code, 1)
    assert.equal(missing.stdout, '')
    assert.match(missing.stderr, /does not exist/)
  })

  it('prunes while another process writes: both succeed, no SQLITE_BUSY reaches anyone', async () => {
    const {db, path} = freshDb()
    db.tx(() => {
      for (let i = 0; i < 60_000; i++) insertLog(db, {completed_at: ago(40 * DAY - i), result: 'x'.repeat(200)})
    })
    db.close()
    // The writer runs until the test says stop (a file appears), so it overlaps the whole prune however slow
    // the machine is.
    const stop = `${path}.stop`
    const writerCode = `
      const D = require('better-sqlite3'); const fs = require('fs'); const db = new D(process.argv[1]); db.pragma('busy_timeout = 5000'); db.pragma('journal_mode = WAL')
      const ins = db.prepare("INSERT INTO job_transitions (job_id, from_status, to_status, created_at) VALUES ('w', NULL, 'queued', '2099-01-01 00:00:00.000')")
      let n = 0, errors = 0
      while (n % 50 !== 0 || !fs.existsSync(process.argv[2])) { try { ins.run(); n++ } catch (e) { errors++; n++; console.error(e.message) } }
      console.log(JSON.stringify({n: n - errors, errors}))`
    const writer = spawn(process.execPath, ['-e', writerCode, path, stop], {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    writer.stdout.on('data', (d) => (out += d))
    writer.stderr.on('data', (d) => (err += d))
    const done = new Promise((r) => writer.on('exit', r))
    const reader = freshHandle(path)
    await waitFor('the writer to write', () => (reader.query('SELECT COUNT(*) AS n FROM job_transitions')[0] as {n: number}).n > 100)
    reader.close()
    const p = await runCli(['prune', '--db', path, '--table', 'job_log', '--json'])
    writeFileSync(stop, '')
    await done
    assert.equal(p.code, 0, p.stderr)
    assert.equal(p.json().tables[0].deleted, 60_000)
    assert.equal(err, '', 'the writer saw no errors')
    const w = JSON.parse(out)
    assert.equal(w.errors, 0)
    assert.ok(w.n > 100, `the writer wrote (${w.n} rows)`)
    assert.equal(rows(freshHandle(path), 'SELECT COUNT(*) AS n FROM job_transitions')[0].n, w.n, 'nothing the writer wrote was lost')
  })
})

function freshHandle(path: string) {
  return openDb(path, {mode: 'read'})
}
