// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {freshDb} from '../helpers/db.js'
import {pgReferenceQueries, psql, referenceQueries, sqlite3} from '../helpers/reference.js'
import {onPostgres, sqliteOnly} from '../helpers/store.js'
import {
  DAY,
  HOUR,
  MIN,
  ago,
  insertBreaker,
  insertBreakerTransition,
  insertFact,
  insertJob,
  insertLog,
  insertSchedule,
  insertState,
} from '../helpers/fixtures.js'

/**
 * The reference's own SQL is the contract: each query of the user's database reference, pasted verbatim
 * into the real sqlite3 shell, returns the rows the matching command returns with --json. On PostgreSQL the
 * same, with the README's PostgreSQL form of each query in the real psql.
 */

/** The shell an operator pastes the reference into: sqlite3 for a file, psql for PostgreSQL. */
const shell = (db: string, sql: string) => (onPostgres ? psql(db, sql) : sqlite3(db, sql))

const pick = <T extends Record<string, unknown>>(row: T, keys: string[]) => Object.fromEntries(keys.map((k) => [k, row[k]]))
const sortRows = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).sort()

function seed() {
  const {db, path} = freshDb()
  for (const [status, n] of [
    ['queued', 3],
    ['running', 1],
    ['succeeded', 5],
    ['failed', 2],
    ['timed_out', 1],
    ['dead', 1],
    ['skipped', 1],
  ] as const) {
    for (let i = 0; i < n; i++) insertJob(db, {status, created_at: ago((i + 1) * MIN)})
  }
  insertJob(db, {status: 'running', plugin: 'stuck-one', started_at: ago(3 * HOUR)})
  insertJob(db, {status: 'running', plugin: 'stuck-two', command: 'sync', started_at: ago(90 * MIN)})
  insertJob(db, {status: 'running', plugin: 'fresh', started_at: ago(10 * MIN)})
  // Successful attempts with distinct whole-second durations, inside and outside the last day.
  for (let i = 0; i < 14; i++) {
    insertLog(db, {plugin: `p${i % 4}`, command: i % 2 ? 'poll' : 'handle', started_at: ago(2 * HOUR + (i * 7 + 3) * 1000), completed_at: ago(2 * HOUR)})
  }
  insertLog(db, {plugin: 'ancient', started_at: ago(3 * DAY + 900_000), completed_at: ago(3 * DAY)})
  insertLog(db, {plugin: 'my-plugin', status: 'failed', completed_at: ago(5 * HOUR), last_error: 'older failure', stderr: 'old'})
  insertLog(db, {plugin: 'my-plugin', status: 'failed', completed_at: ago(HOUR), last_error: 'exit status 2', stderr: 'Traceback\n  boom\n'})
  insertLog(db, {plugin: 'my-plugin', status: 'timed_out', completed_at: ago(MIN), last_error: 'timed out'})
  insertFact(db, {seq: null, created_at: ago(9 * HOUR)})
  insertFact(db, {seq: null, created_at: ago(8 * HOUR)})
  for (let s = 1; s <= 25; s++) insertFact(db, {seq: s, created_at: ago((30 - s) * MIN), fact_json: JSON.stringify({n: s})})
  insertFact(db, {plugin_name: 'other', seq: 26})
  insertState(db, {plugin_name: 'my-plugin', state: '{"cursor":"abc","count":3}'})
  insertBreaker(db, {plugin: 'my-plugin', state: 'open'})
  insertBreaker(db, {plugin: 'half', state: 'half_open'})
  insertBreaker(db, {plugin: 'ok', state: 'closed', opened_at: null, failure_count: 0})
  for (let i = 0; i < 23; i++) {
    insertBreakerTransition(db, {plugin: 'my-plugin', command: 'poll', created_at: ago((i + 1) * HOUR), reason: i % 2 ? 'success' : 'failure_threshold'})
  }
  insertBreakerTransition(db, {plugin: 'my-plugin', command: 'sync'})
  insertSchedule(db, {plugin: 'a', next_run_at: ago(-30 * MIN)})
  insertSchedule(db, {plugin: 'b', next_run_at: ago(-5 * MIN)})
  insertSchedule(db, {plugin: 'c', next_run_at: ago(10 * MIN), last_success_at: null})
  insertSchedule(db, {plugin: 'd', status: 'paused_manual', next_run_at: ago(-1 * MIN)})
  db.close()
  return path
}

describe("the database reference, verbatim in sqlite3 (in psql: the README's form), matches the commands", () => {
  const queries = onPostgres ? pgReferenceQueries() : referenceQueries()
  const q = (name: string) => {
    const sql = queries.get(name)
    assert.ok(sql, `reference query "${name}" found`)
    return sql!
  }

  it('finds every query in the reference', () => {
    assert.deepEqual(
      [...queries.keys()],
      [
        'Count jobs by status',
        'Identify plugins with active circuit breakers',
        'Show recent breaker transitions',
        'Check for stuck "running" jobs (orphans)',
        'Find the slowest successful jobs in the last 24 hours',
        'Get the latest error for a specific plugin',
        'Inspect recent append-only plugin facts (the durable record)',
        "Inspect a plugin's compatibility view (latest fact, mirrored)",
        'See upcoming scheduled runs',
      ],
    )
  })

  it('System Health queries: jobs status, breakers list, breakers history, jobs stuck', async () => {
    const path = seed()
    const counts = shell(path, q('Count jobs by status'))
    const status = (await runCli(['jobs', 'status', '--db', path, '--json'])).json()
    assert.deepEqual(sortRows(counts.map((r) => ({status: r.status, count: r[onPostgres ? 'count' : 'COUNT(*)']}))), sortRows(status.counts))

    const breakers = shell(path, q('Identify plugins with active circuit breakers'))
    const list = (await runCli(['breakers', 'list', '--db', path, '--json'])).json()
    const bCols = ['plugin', 'command', 'state', 'failure_count', 'opened_at']
    assert.equal(breakers.length, 2)
    assert.deepEqual(sortRows(breakers), sortRows(list.breakers.map((b: Record<string, unknown>) => pick(b, bCols))))

    const transitions = shell(path, q('Show recent breaker transitions'))
    const hist = (await runCli(['breakers', 'history', 'my-plugin', '--db', path, '--json'])).json()
    const tCols = ['created_at', 'plugin', 'command', 'from_state', 'to_state', 'reason', 'failure_count', 'job_id']
    assert.equal(transitions.length, 20)
    assert.deepEqual(
      transitions,
      hist.transitions.map((t: Record<string, unknown>) => pick(t, tCols)),
    )

    const stuck = shell(path, q('Check for stuck "running" jobs (orphans)'))
    const cli = (await runCli(['jobs', 'stuck', '--db', path, '--json'])).json()
    assert.equal(stuck.length, 2)
    assert.deepEqual(sortRows(stuck), sortRows(cli.jobs.map((j: Record<string, unknown>) => pick(j, ['id', 'plugin', 'command', 'started_at']))))
  })

  it('Performance & Troubleshooting queries: jobs slowest, jobs errors, facts, state', async () => {
    const path = seed()
    const slow = shell(path, q('Find the slowest successful jobs in the last 24 hours'))
    const cli = (await runCli(['jobs', 'slowest', '--db', path, '--json'])).json()
    assert.equal(slow.length, 10)
    assert.deepEqual(
      slow,
      cli.jobs.map((j: Record<string, unknown>) => pick(j, ['plugin', 'command', 'duration_sec'])),
    )

    const err = shell(path, q('Get the latest error for a specific plugin'))
    const errors = (await runCli(['jobs', 'errors', '--plugin', 'my-plugin', '--status', 'failed', '--db', path, '--json'])).json()
    assert.deepEqual(
      err,
      errors.errors.map((e: Record<string, unknown>) => pick(e, ['completed_at', 'last_error', 'stderr'])),
    )
    assert.equal(err[0].last_error, 'exit status 2')

    const facts = shell(path, q('Inspect recent append-only plugin facts (the durable record)'))
    const f = (await runCli(['facts', 'file_watch', '--db', path, '--json'])).json()
    assert.equal(facts.length, 20)
    assert.deepEqual(
      facts,
      f.facts.map((x: Record<string, unknown>) => ({...pick(x, ['seq', 'created_at', 'fact_type', 'job_id', 'command']), fact_json: JSON.stringify(x.fact)})),
    )
    const all = (await runCli(['facts', 'file_watch', '--limit', '100', '--db', path, '--json'])).json()
    const allSql = shell(path, q('Inspect recent append-only plugin facts (the durable record)').replace('LIMIT 20', 'LIMIT 100'))
    assert.deepEqual(
      allSql.map((r) => r.seq),
      all.facts.map((x: {seq: number | null}) => x.seq),
    )
    assert.deepEqual(
      allSql.slice(-2).map((r) => r.seq),
      [null, null],
      'legacy rows last',
    )

    const state = shell(path, q("Inspect a plugin's compatibility view (latest fact, mirrored)"))
    const s = (await runCli(['state', 'my-plugin', '--db', path, '--json'])).json()
    assert.deepEqual(JSON.parse(state[0].state as string), s.state)
  })

  it('Scheduler Inspection: schedules list', async () => {
    const path = seed()
    const upcoming = shell(path, q('See upcoming scheduled runs'))
    const cli = (await runCli(['schedules', 'list', '--db', path, '--json'])).json()
    assert.equal(upcoming.length, 3)
    assert.deepEqual(
      upcoming,
      cli.schedules.map((x: Record<string, unknown>) => pick(x, ['plugin', 'schedule_id', 'next_run_at', 'last_success_at'])),
    )
  })

  it('Maintenance: the manual prune and VACUUM work on our database, and it stays valid', {skip: sqliteOnly}, async () => {
    const path = seed()
    const before = sqlite3(path, `SELECT COUNT(*) AS n FROM job_log WHERE completed_at < datetime('now', '-7 days')`)
    assert.equal(before[0].n, 0)
    execFileSync('sqlite3', [path, "DELETE FROM job_log WHERE completed_at < datetime('now', '-2 days');"])
    assert.deepEqual(sqlite3(path, `SELECT plugin FROM job_log WHERE plugin = 'ancient'`), [], 'the 3-day-old row went')
    assert.ok((sqlite3(path, 'SELECT COUNT(*) AS n FROM job_log')[0].n as number) > 10, 'younger rows stay')
    execFileSync('sqlite3', [path, 'VACUUM;'])
    const check = await runCli(['db', 'check', '--db', path])
    assert.equal(check.code, 0, check.stdout)
    const pragmas = execFileSync('sqlite3', [path, 'PRAGMA journal_mode;'], {encoding: 'utf8'})
    assert.equal(pragmas.trim(), 'wal')
  })

  it("Maintenance on PostgreSQL: the README's manual prune and VACUUM (ANALYZE) work on our database, and it stays valid", {
    skip: !onPostgres && 'PostgreSQL only',
  }, async () => {
    const path = seed()
    execFileSync('psql', [path, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', "DELETE FROM job_log WHERE completed_at < ductile_ago('2 days');"])
    assert.deepEqual(psql(path, `SELECT plugin FROM job_log WHERE plugin = 'ancient'`), [], 'the 3-day-old row went')
    assert.ok((psql(path, 'SELECT COUNT(*) AS n FROM job_log')[0]?.n as number) > 10, 'younger rows stay')
    execFileSync('psql', [path, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'VACUUM (ANALYZE) job_log;'])
    const check = await runCli(['db', 'check', '--db', path])
    assert.equal(check.code, 0, check.stdout)
  })
})
