// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import BetterSqlite3 from 'better-sqlite3'

import {findSlowestJobs} from '../../src/queries/logs.js'
import {runCli} from '../helpers/cli.js'
import {rows} from '../helpers/engine.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {DAY, HOUR, MIN, ago, insertAttempt, insertContext, insertJob, insertLog, insertTransition} from '../helpers/fixtures.js'
import {onPostgres, sqliteOnly} from '../helpers/store.js'

describe('jobs status', () => {
  it('counts by status, human and --json, --plugin and --by-plugin', async () => {
    const {db, path} = freshDb()
    insertJob(db, {status: 'queued'})
    insertJob(db, {status: 'queued'})
    insertJob(db, {status: 'failed', plugin: 'other'})
    insertJob(db, {status: 'succeeded'})
    db.close()
    const h = await runCli(['jobs', 'status', '--db', path])
    assert.equal(h.code, 0, h.stderr)
    assert.match(h.stdout, /queued\s*│\s*2/)
    assert.match(h.stdout, /total\s*│\s*4/)
    assert.doesNotMatch(h.stdout, /\x1b\[/, 'no colour when piped')
    const j = await runCli(['jobs', 'status', '--db', path, '--json'])
    assert.deepEqual(j.json(), {
      total: 4,
      counts: [
        {status: 'failed', count: 1},
        {status: 'queued', count: 2},
        {status: 'succeeded', count: 1},
      ],
    })
    const p = await runCli(['jobs', 'status', '--db', path, '--plugin', 'other', '--by-plugin', '--json'])
    assert.deepEqual(p.json().byPlugin, [{plugin: 'other', status: 'failed', count: 1}])
  })

  it('an unknown plugin is an empty state with exit 0', async () => {
    const {db, path} = freshDb()
    db.close()
    const r = await runCli(['jobs', 'status', '--db', path, '--plugin', 'nope'])
    assert.equal(r.code, 0)
    assert.equal(r.stdout.trim(), 'No jobs for plugin nope.')
  })

  it('a missing database is exit 1 with a clear message, and no file is created', async () => {
    const path = join(tempDir(), 'missing.db')
    const r = await runCli(['jobs', 'status', '--db', path])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Error \(db_missing\): database .*missing\.db does not exist/)
    assert.match(r.stderr, /ductile db init/)
    const {existsSync} = await import('node:fs')
    assert.equal(existsSync(path), false)
    assert.equal(existsSync(`${path}-wal`), false)
  })

  it('a file that is not SQLite is exit 1 naming the file', async () => {
    const path = join(tempDir(), 'notes.db')
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(200))
    const r = await runCli(['jobs', 'status', '--db', path, '--json'])
    assert.equal(r.code, 1)
    assert.equal(r.json().error.code, 'db_not_sqlite')
    assert.match(r.json().error.message, /notes\.db is not a SQLite database/)
  })

  it('reads while another connection holds the write lock (WAL readers never wait)', async () => {
    const {db, path} = freshDb()
    insertJob(db, {status: 'running', started_at: ago(2 * HOUR)})
    db.exec(onPostgres ? 'BEGIN' : 'BEGIN IMMEDIATE')
    insertJob(db, {status: 'queued'})
    const r = await runCli(['jobs', 'status', '--db', path, '--json'])
    db.exec('COMMIT')
    db.close()
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json().total, 1, 'sees the last committed state')
  })

  it('a database locked exclusively by another process is exit 1 db_locked after the busy timeout', {skip: sqliteOnly}, async () => {
    const {db, path} = freshDb()
    db.close()
    const holder = new BetterSqlite3(path)
    holder.pragma('journal_mode = DELETE')
    holder.pragma('locking_mode = EXCLUSIVE')
    holder.exec('BEGIN EXCLUSIVE')
    holder.prepare(`INSERT INTO storage_sequences (name, value) VALUES ('x', 1)`).run()
    const r = await runCli(['jobs', 'status', '--db', path, '--json'], {env: {DUCTILE_BUSY_TIMEOUT_MS: '200'}})
    holder.exec('ROLLBACK')
    holder.close()
    assert.equal(r.code, 1)
    assert.equal(r.json().error.code, 'db_locked')
    assert.match(r.json().error.hint, /retry/)
  })

  it('malformed flag values are exit 2', async () => {
    const {db, path} = freshDb()
    db.close()
    for (const args of [
      ['jobs', 'list', '--status', 'bogus'],
      ['jobs', 'list', '--limit', 'many'],
      ['jobs', 'list', '--since', 'yesterday'],
      ['jobs', 'stuck', '--older-than', '5 minutes'],
      ['jobs', 'status', '--no-such-flag'],
      ['jobs', 'logs', '--from', 'tuesday'],
    ]) {
      const r = await runCli([...args, '--db', path])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /Error \(usage\)/)
    }
    const j = await runCli(['jobs', 'list', '--status', 'bogus', '--db', path, '--json'])
    assert.equal(j.code, 2)
    assert.equal(j.json().error.code, 'usage')
    assert.match(j.json().error.message, /^--status: unknown status "bogus"$/)
    assert.match(j.json().error.hint, /allowed: queued, running, succeeded, skipped, failed, timed_out, dead/)
  })
})

describe('jobs list', () => {
  it('newest first with filters, human and --json', async () => {
    const {db, path} = freshDb()
    const old = insertJob(db, {created_at: ago(3 * DAY), status: 'failed', last_error: 'boom\nsecond line'})
    const mid = insertJob(db, {created_at: ago(2 * HOUR), status: 'succeeded'})
    const young = insertJob(db, {created_at: ago(MIN), status: 'queued', plugin: 'other'})
    db.close()
    const all = await runCli(['jobs', 'list', '--db', path, '--json'])
    assert.deepEqual(
      all.json().jobs.map((j: {id: string}) => j.id),
      [young.id, mid.id, old.id],
    )
    assert.deepEqual(all.json().jobs[2], old, 'every column as stored')
    const since = await runCli(['jobs', 'list', '--db', path, '--since', '1d', '--plugin', 'my-plugin', '--json'])
    assert.deepEqual(
      since.json().jobs.map((j: {id: string}) => j.id),
      [mid.id],
    )
    const failed = await runCli(['jobs', 'list', '--db', path, '--status', 'error'])
    assert.equal(failed.code, 0)
    assert.ok(failed.stdout.includes(old.id))
    assert.match(failed.stdout, /boom/)
    assert.doesNotMatch(failed.stdout, /second line/)
    assert.match(failed.stdout, /3 days ago/)
    const none = await runCli(['jobs', 'list', '--db', path, '--plugin', 'nope'])
    assert.equal(none.stdout.trim(), 'No jobs match.')
  })
})

describe('jobs stuck', () => {
  it('running jobs older than the cutoff, with process liveness', async () => {
    const {db, path} = freshDb()
    const stuck = insertJob(db, {status: 'running', started_at: ago(2 * HOUR), attempt: 2})
    insertAttempt(db, {job_id: stuck.id, attempt: 2, engine_pid: 999_999, plugin_pid: process.pid, created_at: ago(2 * HOUR)})
    insertJob(db, {status: 'running', started_at: ago(10 * MIN)})
    insertJob(db, {status: 'queued', started_at: ago(5 * HOUR)})
    db.close()
    const j = await runCli(['jobs', 'stuck', '--db', path, '--json'])
    assert.equal(j.code, 0, j.stderr)
    const jobs = j.json().jobs
    assert.equal(jobs.length, 1)
    assert.equal(jobs[0].id, stuck.id)
    // On a shared database a PID may be another host's: liveness is not guessed (null, shown as "?").
    assert.equal(jobs[0].process_alive, onPostgres ? null : true, 'this test process stands in for a live plugin')
    assert.equal(jobs[0].engine_alive, onPostgres ? null : false)
    assert.ok(jobs[0].running_ms >= 2 * HOUR - 1000)
    const h = await runCli(['jobs', 'stuck', '--db', path, '--older-than', '5m'])
    assert.ok(h.stdout.includes(stuck.id))
    assert.match(h.stdout, onPostgres ? /999999 \?/ : /999999 gone/)
    const none = await runCli(['jobs', 'stuck', '--db', path, '--older-than', '3h'])
    assert.equal(none.stdout.trim(), 'No stuck jobs.')
  })
})

describe('jobs slowest', () => {
  it('slowest successful attempts in the window, in ms', async () => {
    const {db, path} = freshDb()
    // One instant for every time: two calls to Date.now() may be a millisecond apart.
    const now = Date.now()
    const a = insertLog(db, {started_at: ago(HOUR + 90_000, now), completed_at: ago(HOUR, now)})
    const b = insertLog(db, {started_at: ago(HOUR + 5_000, now), completed_at: ago(HOUR, now), plugin: 'fast'})
    insertLog(db, {started_at: ago(2 * DAY + 500_000, now), completed_at: ago(2 * DAY, now)})
    insertLog(db, {status: 'failed', started_at: ago(HOUR + 900_000, now), completed_at: ago(HOUR, now)})
    db.close()
    const j = await runCli(['jobs', 'slowest', '--db', path, '--json'])
    const jobs = j.json().jobs
    assert.deepEqual(
      jobs.map((x: {id: string}) => x.id),
      [a.id, b.id],
    )
    assert.equal(jobs[0].duration_ms, 90_000)
    assert.equal(jobs[0].duration_sec, 90)
    const h = await runCli(['jobs', 'slowest', '--db', path, '--limit', '1'])
    assert.match(h.stdout, /1m30s/)
    assert.doesNotMatch(h.stdout, /fast/)
    const wide = await runCli(['jobs', 'slowest', '--db', path, '--since', '7d', '--json'])
    assert.equal(wide.json().jobs.length, 3)
  })
})

describe("jobs slowest over a long window (from the slowest down, in the reference's order)", () => {
  it('returns the rows a full sort returns, whole-second ties broken by the exact duration', () => {
    const {db} = freshDb()
    const now = Date.now()
    // 600 attempts over 5 days, durations drawn from a few whole seconds so most of them tie.
    let seed = 7
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    db.tx(() => {
      for (let i = 0; i < 600; i++) {
        const end = now - Math.floor(rand() * 5 * DAY)
        const ms = [3, 4, 5][Math.floor(rand() * 3)] * 1000 + Math.floor(rand() * 1000)
        insertLog(db, {started_at: ago(ms, end), completed_at: ago(0, end), status: rand() < 0.9 ? 'succeeded' : 'failed'})
      }
    })
    const since = ago(4 * DAY, now)
    const key = (r: {duration_sec: number | null; duration_ms: number | null}) => `${r.duration_sec}/${r.duration_ms}`
    const brute = rows(
      db,
      onPostgres
        ? `SELECT ductile_sec(completed_at) - ductile_sec(started_at) AS duration_sec,
            CAST(ROUND(ductile_ms(completed_at) - ductile_ms(started_at)) AS bigint) AS duration_ms
           FROM job_log WHERE status = 'succeeded' AND completed_at > ?
           ORDER BY duration_sec DESC, ductile_ms(completed_at) - ductile_ms(started_at) DESC LIMIT 15`
        : `SELECT (strftime('%s', completed_at) - strftime('%s', started_at)) AS duration_sec,
        CAST(ROUND((julianday(completed_at) - julianday(started_at)) * 86400000) AS INTEGER) AS duration_ms
       FROM job_log NOT INDEXED WHERE status = 'succeeded' AND completed_at > ?
       ORDER BY duration_sec DESC, julianday(completed_at) - julianday(started_at) DESC LIMIT 15`,
      since,
    ) as {duration_sec: number; duration_ms: number}[]
    const ours = findSlowestJobs(db, since, 15, 4 * DAY)
    assert.equal(ours.length, 15)
    assert.deepEqual(ours.map(key), brute.map(key))
    assert.ok(ours.every((r) => r.completed_at > since))
  })
})

describe('jobs errors', () => {
  it('the latest failed attempt with its error and stderr tail', async () => {
    const {db, path} = freshDb()
    insertLog(db, {status: 'failed', completed_at: ago(2 * HOUR), last_error: 'older'})
    const latest = insertLog(db, {status: 'failed', completed_at: ago(HOUR), last_error: 'disk quota exceeded', stderr: 'line1\nline2\nTraceback: boom\n'})
    insertLog(db, {status: 'succeeded', completed_at: ago(MIN)})
    insertLog(db, {status: 'failed', plugin: 'other', completed_at: ago(MIN), last_error: 'other error'})
    db.close()
    const j = await runCli(['jobs', 'errors', '--db', path, '--plugin', 'my-plugin', '--json'])
    assert.deepEqual(
      j.json().errors.map((e: {id: string}) => e.id),
      [latest.id],
    )
    assert.equal(j.json().errors[0].stderr, latest.stderr)
    const h = await runCli(['jobs', 'errors', '--db', path, '--plugin', 'my-plugin'])
    assert.match(h.stdout, /error: disk quota exceeded/)
    assert.match(h.stdout, /Traceback: boom/)
    const all = await runCli(['jobs', 'errors', '--db', path, '--limit', '5', '--json'])
    assert.equal(all.json().errors.length, 3)
    assert.equal(all.json().errors[0].last_error, 'other error')
    const none = await runCli(['jobs', 'errors', '--db', path, '--plugin', 'nope'])
    assert.equal(none.code, 0)
    assert.equal(none.stdout.trim(), 'No failed or timed-out jobs for plugin nope.')
  })

  it('timed-out attempts count as errors, merged with failures newest first (issue 13.18)', async () => {
    const {db, path} = freshDb()
    const failed = insertLog(db, {status: 'failed', completed_at: ago(2 * HOUR), last_error: 'upstream said no'})
    const timedOut = insertLog(db, {status: 'timed_out', completed_at: ago(HOUR), last_error: 'plugin execution timed out after 60s'})
    insertLog(db, {status: 'timed_out', plugin: 'other', completed_at: ago(MIN)})
    db.close()
    const j = await runCli(['jobs', 'errors', '--db', path, '--plugin', 'my-plugin', '--limit', '5', '--json'])
    assert.deepEqual(
      j.json().errors.map((e: {id: string; status: string}) => [e.id, e.status]),
      [
        [timedOut.id, 'timed_out'],
        [failed.id, 'failed'],
      ],
    )
    const h = await runCli(['jobs', 'errors', '--db', path, '--plugin', 'my-plugin'])
    assert.match(h.stdout, /^timed_out {2}my-plugin poll/)
    const all = await runCli(['jobs', 'errors', '--db', path, '--json'])
    assert.equal(all.json().errors[0].plugin, 'other')
  })
})

describe('jobs logs', () => {
  it('searches by plugin, status, time window and text; says when more rows match', async () => {
    const {db, path} = freshDb()
    const r1 = insertLog(db, {completed_at: ago(3 * HOUR), result: '{"status":"ok","result":"fetched 10 items"}'})
    const r2 = insertLog(db, {status: 'failed', completed_at: ago(2 * HOUR), last_error: 'Connection REFUSED by host', stderr: 'x'})
    const r3 = insertLog(db, {status: 'timed_out', completed_at: ago(HOUR), last_error: 'plugin execution timed out after 60s', plugin: 'slow'})
    db.close()
    const all = await runCli(['jobs', 'logs', '--db', path, '--json'])
    assert.deepEqual(
      all.json().logs.map((l: {id: string}) => l.id),
      [r3.id, r2.id, r1.id],
    )
    assert.equal(all.json().truncated, false)
    const q = await runCli(['jobs', 'logs', '--db', path, '--query', 'refused', '--json'])
    assert.deepEqual(
      q.json().logs.map((l: {id: string}) => l.id),
      [r2.id],
    )
    const res = await runCli(['jobs', 'logs', '--db', path, '--query', '10 items', '--json'])
    assert.deepEqual(
      res.json().logs.map((l: {id: string}) => l.id),
      [r1.id],
    )
    const pct = await runCli(['jobs', 'logs', '--db', path, '--query', '%', '--json'])
    assert.deepEqual(pct.json().logs, [], 'LIKE wildcards in the text are literal')
    const st = await runCli(['jobs', 'logs', '--db', path, '--status', 'timed_out', '--plugin', 'slow', '--json'])
    assert.deepEqual(
      st.json().logs.map((l: {id: string}) => l.id),
      [r3.id],
    )
    const lim = await runCli(['jobs', 'logs', '--db', path, '--limit', '1'])
    assert.match(lim.stdout, /more rows match/)
    assert.match(lim.stdout, /timed_out\s+slow:poll/)
    const job = await runCli(['jobs', 'logs', '--db', path, '--job', r1.job_id!, '--include-result'])
    assert.match(job.stdout, /result: \{"status":"ok","result":"fetched 10 items"\}/)
    const none = await runCli(['jobs', 'logs', '--db', path, '--plugin', 'nope'])
    assert.equal(none.stdout.trim(), 'No log rows match.')
  })
})

describe('jobs inspect', () => {
  it('queue row, transitions, attempts, log rows, lineage root to leaf, children', async () => {
    const {db, path} = freshDb()
    const root = insertContext(db, {accumulated_json: '{"ductile":{"pipeline_instance_id":"p1","route_depth":0}}'})
    const leaf = insertContext(db, {
      parent_id: root.id,
      step_id: 'notify',
      accumulated_json: '{"ductile":{"pipeline_instance_id":"p1","route_depth":1},"weather":{"city":"Hobart"}}',
    })
    const job = insertJob(db, {status: 'succeeded', attempt: 2, event_context_id: leaf.id, started_at: ago(3 * MIN), completed_at: ago(2 * MIN)})
    insertTransition(db, {job_id: job.id, to_status: 'queued', created_at: ago(9 * MIN)})
    insertTransition(db, {job_id: job.id, from_status: 'queued', to_status: 'running', created_at: ago(8 * MIN)})
    insertTransition(db, {job_id: job.id, from_status: 'running', to_status: 'queued', reason: 'exit 1', created_at: ago(7 * MIN)})
    insertTransition(db, {job_id: job.id, from_status: 'queued', to_status: 'running', created_at: ago(3 * MIN)})
    insertTransition(db, {job_id: job.id, from_status: 'running', to_status: 'succeeded', created_at: ago(2 * MIN)})
    insertAttempt(db, {job_id: job.id, attempt: 1, created_at: ago(8 * MIN)})
    insertAttempt(db, {job_id: job.id, attempt: 2, created_at: ago(3 * MIN)})
    insertLog(db, {job_id: job.id, attempt: 1, status: 'failed', last_error: 'exit 1', completed_at: ago(7 * MIN)})
    insertLog(db, {job_id: job.id, attempt: 2, status: 'succeeded', completed_at: ago(2 * MIN)})
    const child = insertJob(db, {parent_job_id: job.id, plugin: 'notifier', command: 'handle', submitted_by: 'route', source_event_id: 'e1', status: 'queued'})
    db.close()

    const j = await runCli(['jobs', 'inspect', job.id, '--db', path, '--json'])
    assert.equal(j.code, 0, j.stderr)
    const r = j.json()
    assert.deepEqual(r.job, job)
    assert.deepEqual(
      r.transitions.map((t: {to_status: string}) => t.to_status),
      ['queued', 'running', 'queued', 'running', 'succeeded'],
    )
    assert.deepEqual(
      r.attempts.map((a: {attempt: number}) => a.attempt),
      [1, 2],
    )
    assert.deepEqual(
      r.logs.map((l: {status: string}) => l.status),
      ['failed', 'succeeded'],
    )
    assert.deepEqual(
      r.lineage.map((c: {id: string}) => c.id),
      [root.id, leaf.id],
    )
    assert.equal(r.pipeline, 'weather-alert')
    assert.equal(r.step, 'notify')
    assert.deepEqual(r.baggage.weather, {city: 'Hobart'})
    assert.deepEqual(
      r.children.map((c: {id: string; status: string}) => [c.id, c.status]),
      [[child.id, 'queued']],
    )
    assert.deepEqual(r.consistent, {status: true, attempt: true})

    const h = await runCli(['jobs', 'inspect', job.id, '--db', path])
    assert.match(h.stdout, /Transitions/)
    assert.match(h.stdout, /pipeline weather-alert\s+step notify/)
    assert.match(h.stdout, /"city": "Hobart"/)
    assert.ok(h.stdout.includes(child.id))
  })

  it('an unknown id is exit 1 not_found with a hint', async () => {
    const {db, path} = freshDb()
    db.close()
    const r = await runCli(['jobs', 'inspect', 'nope', '--db', path, '--json'])
    assert.equal(r.code, 1)
    assert.equal(r.json().error.code, 'not_found')
    const m = await runCli(['jobs', 'inspect', '--db', path])
    assert.equal(m.code, 2, 'the id is required')
  })
})
