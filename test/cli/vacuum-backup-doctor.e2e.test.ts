import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {closeSync, existsSync, openSync, statSync, writeFileSync, writeSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import BetterSqlite3 from 'better-sqlite3'

import {EngineLock} from '../../src/lib/lock.js'
import {processStartTime} from '../../src/lib/proc.js'
import {openDb} from '../../src/schema/db.js'
import {ROOT, runCli} from '../helpers/cli.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {waitFor} from '../helpers/engine.js'
import {DAY, HOUR, ago, insertBreaker, insertJob, insertLog, insertSchedule} from '../helpers/fixtures.js'
import {lite} from '../helpers/store.js'

/** A database whose file is mostly free pages (rows written, then deleted). */
function bloated() {
  const {db, path, dir} = freshDb()
  db.tx(() => {
    for (let i = 0; i < 8000; i++) insertLog(db, {result: 'r'.repeat(1000)})
  })
  lite(db).sqlite.exec('DELETE FROM job_log')
  lite(db).sqlite.pragma('wal_checkpoint(TRUNCATE)')
  return {db, path, dir}
}

function writeLock(path: string, pid: number, started: string | null) {
  const fd = openSync(`${path}.pid`, 'w')
  writeSync(fd, JSON.stringify({pid, started_at: started, host: hostname(), db: path}))
  closeSync(fd)
}

describe('ductile vacuum', () => {
  it('gives back the space of a large freelist, printing sizes before and after', async () => {
    const {db, path} = bloated()
    db.close()
    const before = statSync(path).size
    const r = await runCli(['vacuum', '--db', path, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = r.json()
    assert.equal(j.mode, 'incremental')
    assert.ok(j.before.freelistPages > 1000)
    assert.equal(j.after.freelistPages, 0)
    assert.ok(statSync(path).size < before / 4, `shrunk from ${before} to ${statSync(path).size}`)
    const h = await runCli(['vacuum', '--db', path])
    assert.match(h.stdout, /MiB → .* MiB \(WAL .* → .*\), 0 pages freed/)
  })

  it('--full is refused while an engine holds the lock, unless --force; --into leaves the live file alone', async () => {
    const {db, path, dir} = bloated()
    db.close()
    writeLock(path, process.pid, processStartTime(process.pid))
    const refused = await runCli(['vacuum', '--full', '--db', path])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, new RegExp(`an engine \\(PID ${process.pid}\\) is running`))
    const into = join(dir, 'compact.db')
    const sizeBefore = statSync(path).size
    const copy = await runCli(['vacuum', '--into', into, '--db', path, '--json'])
    assert.equal(copy.code, 0, copy.stderr)
    assert.ok(statSync(into).size < sizeBefore / 4)
    assert.equal(statSync(path).size, sizeBefore, 'the live file is untouched')
    const again = await runCli(['vacuum', '--into', into, '--db', path])
    assert.equal(again.code, 2, 'an existing target is refused')
    const forced = await runCli(['vacuum', '--full', '--force', '--db', path, '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(forced.json().after.freelistPages, 0)
  })

  it('a file without incremental auto-vacuum is told to use --full, which converts it', async () => {
    const {db, path} = freshDb()
    lite(db).sqlite.pragma('auto_vacuum = NONE')
    lite(db).sqlite.exec('VACUUM')
    db.close()
    const r = await runCli(['vacuum', '--db', path, '--json'])
    // conflict: the request does not fit the file's state; it exits 2 like every conflict (cancel, retry, enqueue).
    assert.equal(r.code, 2)
    assert.equal(r.json().error.code, 'conflict')
    assert.match(r.json().error.message, /does not use incremental auto-vacuum/)
    assert.equal((await runCli(['vacuum', '--full', '--db', path])).code, 0)
    const check = openDb(path, {mode: 'read'})
    assert.equal(check.sqlite.pragma('auto_vacuum', {simple: true}), 2)
    check.close()
  })
})

describe('ductile db backup', () => {
  it('copies a database that is being written; the copy passes integrity_check', async () => {
    const {db, path, dir} = freshDb()
    db.tx(() => {
      for (let i = 0; i < 20_000; i++) insertLog(db, {result: 'x'.repeat(300)})
    })
    db.close()
    // The writer runs for two seconds after it started writing: the backup API restarts its copy whenever
    // another connection writes, so against a writer that never pauses it would not finish (see the note in
    // the README's backup section).
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.pragma('busy_timeout = 5000'); const s = db.prepare("INSERT INTO job_transitions (job_id, to_status, created_at) VALUES ('w', 'queued', '2026-01-01 00:00:00.000')"); let n = 0; s.run(); n++; const end = Date.now() + 2000; while (Date.now() < end) { s.run(); n++ } console.log(n)`,
        path,
      ],
      {cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit']},
    )
    let out = ''
    writer.stdout.on('data', (d) => (out += d))
    const done = new Promise((r) => writer.on('exit', r))
    const reader = new BetterSqlite3(path, {readonly: true})
    await waitFor('the writer to write', () => (reader.prepare('SELECT COUNT(*) AS n FROM job_transitions').get() as {n: number}).n > 100)
    reader.close()
    const to = join(dir, 'backup.db')
    const r = await runCli(['db', 'backup', '--to', to, '--db', path, '--json'])
    await done
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json().integrity, 'ok')
    assert.equal(statSync(to).mode & 0o777, 0o600)
    const copy = new BetterSqlite3(to, {readonly: true})
    assert.equal(copy.pragma('integrity_check', {simple: true}), 'ok')
    assert.equal(copy.prepare('SELECT COUNT(*) FROM job_log').pluck().get(), 20_000)
    copy.close()
    assert.ok(Number(out) > 100, 'the writer wrote during the backup')
    const exists = await runCli(['db', 'backup', '--to', to, '--db', path])
    assert.equal(exists.code, 2)
  })
})

describe('ductile doctor', () => {
  /** A healthy database: current schema, WAL, a live engine lock (this process). */
  function healthy() {
    const f = freshDb()
    const lock = EngineLock.acquire(f.path)
    return {...f, lock}
  }

  const doctor = async (path: string, ...extra: string[]) => {
    const r = await runCli(['doctor', '--db', path, '--json', ...extra])
    const j = r.json()
    return {code: r.code, healthy: j.healthy, check: (name: string) => j.checks.find((c: {name: string}) => c.name === name)}
  }

  it('passes a healthy file (exit 0) and prints a verdict per check', async () => {
    const {db, path, lock} = healthy()
    insertJob(db, {status: 'succeeded', completed_at: ago(HOUR)})
    insertSchedule(db, {next_run_at: ago(-10 * 60_000)})
    db.close()
    try {
      const r = await runCli(['doctor', '--db', path, '--integrity'])
      assert.equal(r.code, 0, r.stdout)
      assert.match(r.stdout, /HEALTHY/)
      for (const name of [
        'schema',
        'quick_check',
        'journal_mode',
        'synchronous',
        'wal_size',
        'freelist',
        'stuck_jobs',
        'breakers',
        'schedules',
        'engine',
        'retention',
      ]) {
        assert.match(r.stdout, new RegExp(`OK\\s+${name}`))
      }
      const j = await doctor(path)
      assert.equal(j.healthy, true)
      assert.equal(j.check('engine').figure, process.pid)
    } finally {
      lock.release()
    }
  })

  it('reads the whole file (quick_check) only with --integrity, and says it did not', async () => {
    const {db, path, lock} = healthy()
    db.close()
    try {
      const plain = await runCli(['doctor', '--db', path, '--json'])
      assert.equal(plain.code, 0, plain.stdout)
      assert.equal(
        plain.json().checks.some((c: {name: string}) => c.name === 'quick_check'),
        false,
      )
      assert.deepEqual(plain.json().skipped, ['quick_check'])
      assert.match((await runCli(['doctor', '--db', path])).stdout, /SKIP\s+quick_check\s+reads the whole file: run with --integrity/)
      const deep = await runCli(['doctor', '--db', path, '--json', '--integrity'])
      assert.equal(deep.json().checks.find((c: {name: string}) => c.name === 'quick_check')?.status, 'ok')
      assert.deepEqual(deep.json().skipped, [])
    } finally {
      lock.release()
    }
  })

  it('fails when the schema is incomplete', async () => {
    const {db, path, lock} = healthy()
    lite(db).sqlite.exec('DROP INDEX job_log_completed_at_idx')
    db.close()
    const r = await doctor(path)
    lock.release()
    assert.equal(r.code, 1)
    assert.equal(r.check('schema').status, 'fail')
    assert.match(r.check('schema').hint, /ductile db migrate/)
  })

  it('reports a corrupt file', async () => {
    const {db, path, lock} = healthy()
    db.tx(() => {
      for (let i = 0; i < 3000; i++) insertLog(db, {result: 'c'.repeat(500)})
    })
    lite(db).sqlite.pragma('wal_checkpoint(TRUNCATE)')
    db.close()
    const fd = openSync(path, 'r+')
    writeSync(fd, Buffer.alloc(8192, 0xab), 0, 8192, 4096 * 40)
    closeSync(fd)
    const r = await doctor(path, '--integrity')
    lock.release()
    assert.equal(r.code, 1)
    assert.equal(r.healthy, false)
    const failed = ['open', 'quick_check', 'schema'].map((n) => r.check(n)).filter((c) => c && c.status === 'fail')
    assert.ok(failed.length > 0, 'quick_check (or opening) fails')
  })

  it('fails when journal_mode is not WAL', async () => {
    const {db, path, lock} = healthy()
    db.close()
    const raw = new BetterSqlite3(path)
    raw.pragma('journal_mode = DELETE')
    raw.close()
    const r = await doctor(path)
    lock.release()
    assert.equal(r.check('journal_mode').status, 'fail')
    assert.equal(r.code, 1)
  })

  it('fails when the WAL is above the limit', async () => {
    const {db, path, lock} = healthy()
    lite(db).sqlite.pragma('wal_autocheckpoint = 0')
    db.tx(() => {
      for (let i = 0; i < 3000; i++) insertLog(db, {result: 'w'.repeat(1000)})
    })
    const r = await doctor(path, '--max-wal', '1')
    db.close()
    lock.release()
    assert.equal(r.check('wal_size').status, 'fail')
    assert.ok(r.check('wal_size').figure > 1048576)
  })

  it('fails on a large freelist and suggests vacuum', async () => {
    const {db, path, lock} = healthy()
    db.tx(() => {
      for (let i = 0; i < 4000; i++) insertLog(db, {result: 'f'.repeat(1000)})
    })
    lite(db).sqlite.exec('DELETE FROM job_log')
    db.close()
    const r = await doctor(path)
    lock.release()
    assert.equal(r.check('freelist').status, 'fail')
    assert.match(r.check('freelist').hint, /ductile vacuum/)
  })

  it('fails on a job running longer than the longest timeout', async () => {
    const {db, path, lock} = healthy()
    insertJob(db, {status: 'running', started_at: ago(HOUR)})
    db.close()
    const r = await doctor(path, '--stuck-after', '10m')
    lock.release()
    assert.equal(r.check('stuck_jobs').status, 'fail')
    assert.equal(r.check('stuck_jobs').figure, 1)
  })

  it('fails on a breaker that is not closed', async () => {
    const {db, path, lock} = healthy()
    insertBreaker(db, {plugin: 'flaky', state: 'open'})
    db.close()
    const r = await doctor(path)
    lock.release()
    assert.equal(r.check('breakers').status, 'fail')
    assert.match(r.check('breakers').detail, /flaky poll open/)
  })

  it('fails on a schedule overdue by more than its interval', async () => {
    const {db, path, lock} = healthy()
    insertSchedule(db, {plugin: 'late', next_run_at: ago(2 * HOUR), interval_ms: 15 * 60_000})
    insertSchedule(db, {plugin: 'slightly', next_run_at: ago(5 * 60_000), interval_ms: 15 * 60_000})
    db.close()
    const r = await doctor(path)
    lock.release()
    assert.equal(r.check('schedules').status, 'fail')
    assert.equal(r.check('schedules').figure, 1)
    assert.match(r.check('schedules').detail, /late\/default/)
  })

  it('allows a due schedule one scheduler tick (service.tick_interval) beyond its interval', async () => {
    const {db, path, lock} = healthy()
    // Every 5 s with a 5 s tick: 7 s past its next run is an ordinary wait for the next tick, 12 s is not.
    insertSchedule(db, {plugin: 'waiting', next_run_at: ago(7000), interval_ms: 5000})
    insertSchedule(db, {plugin: 'stalled', next_run_at: ago(12_000), interval_ms: 5000})
    db.close()
    const dir = tempDir('ductile-doctor-')
    writeFileSync(join(dir, 'config.yaml'), 'service:\n  tick_interval: 5s\nplugin_roots: []\n')
    const r = await doctor(path, '--config', dir)
    lock.release()
    assert.equal(r.check('schedules').figure, 1)
    assert.match(r.check('schedules').detail, /stalled\/default/)
    assert.doesNotMatch(r.check('schedules').detail, /waiting/)
  })

  it('fails when no engine holds the lock, or the lock is stale; --engine-optional makes a missing engine a warning', async () => {
    const {db, path} = freshDb()
    db.close()
    const none = await doctor(path)
    assert.equal(none.check('engine').status, 'fail')
    const optional = await doctor(path, '--engine-optional')
    assert.equal(optional.check('engine').status, 'warn')
    assert.equal(optional.code, 0)
    writeLock(path, 999_999, null)
    const stale = await doctor(path, '--engine-optional')
    assert.equal(stale.check('engine').status, 'fail')
    assert.match(stale.check('engine').detail, /PID 999999, which is not running/)
  })

  it('fails when finished queue rows outlive their retention (prune not running)', async () => {
    const {db, path, lock} = healthy()
    insertJob(db, {status: 'succeeded', completed_at: ago(3 * DAY)})
    db.close()
    const r = await doctor(path)
    lock.release()
    assert.equal(r.check('retention').status, 'fail')
    assert.match(r.check('retention').hint, /ductile prune/)
  })

  it('a missing file is reported, not created', async () => {
    const path = join(tempDir(), 'none.db')
    const r = await doctor(path)
    assert.equal(r.code, 1)
    assert.equal(r.check('open').figure, 'db_missing')
    assert.equal(existsSync(path), false)
  })
})
