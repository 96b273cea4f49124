// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {freshDb} from '../helpers/db.js'
import {HOUR, MIN, ago, insertBreaker, insertBreakerTransition, insertFact, insertJob, insertSchedule, insertState} from '../helpers/fixtures.js'
import {STORE, onPostgres} from '../helpers/store.js'

describe('breakers list', () => {
  it('not-closed breakers by default, every one with --all', async () => {
    const {db, path} = freshDb()
    const open = insertBreaker(db, {plugin: 'flaky', state: 'open'})
    insertBreaker(db, {plugin: 'fine', state: 'closed', failure_count: 0, opened_at: null})
    const half = insertBreaker(db, {plugin: 'probe', state: 'half_open'})
    db.close()
    const j = await runCli(['breakers', 'list', '--db', path, '--json'])
    assert.deepEqual(j.json().breakers, [open, half])
    const all = await runCli(['breakers', 'list', '--db', path, '--all', '--json'])
    assert.equal(all.json().breakers.length, 3)
    const h = await runCli(['breakers', 'list', '--db', path])
    assert.match(h.stdout, /flaky\s*│\s*poll\s*│\s*open\s*│\s*3/)
    assert.doesNotMatch(h.stdout, /fine/)
  })

  it('an empty state when every breaker is closed', async () => {
    const {db, path} = freshDb()
    db.close()
    const r = await runCli(['breakers', 'list', '--db', path])
    assert.equal(r.code, 0)
    assert.equal(r.stdout.trim(), 'No open circuit breakers.')
  })
})

describe('breakers history', () => {
  it('transitions for (plugin, command) newest first, with the current row', async () => {
    const {db, path} = freshDb()
    insertBreaker(db, {plugin: 'flaky'})
    const t1 = insertBreakerTransition(db, {plugin: 'flaky', from_state: null, to_state: 'open', created_at: ago(3 * HOUR)})
    const t2 = insertBreakerTransition(db, {plugin: 'flaky', from_state: 'open', to_state: 'half_open', reason: 'cooldown_elapsed', created_at: ago(2 * HOUR)})
    const t3 = insertBreakerTransition(db, {plugin: 'flaky', from_state: 'half_open', to_state: 'open', created_at: ago(HOUR)})
    insertBreakerTransition(db, {plugin: 'flaky', command: 'sync', created_at: ago(MIN)})
    db.close()
    const j = await runCli(['breakers', 'history', 'flaky', '--db', path, '--json'])
    assert.deepEqual(
      j.json().transitions.map((t: {id: string}) => t.id),
      [t3.id, t2.id, t1.id],
    )
    assert.equal(j.json().breaker.state, 'open')
    const lim = await runCli(['breakers', 'history', 'flaky', '--db', path, '--command', 'sync', '--limit', '1', '--json'])
    assert.equal(lim.json().transitions.length, 1)
    const h = await runCli(['breakers', 'history', 'flaky', '--db', path])
    assert.match(h.stdout, /cooldown_elapsed/)
    const none = await runCli(['breakers', 'history', 'nope', '--db', path])
    assert.equal(none.code, 0)
    assert.match(none.stdout, /no breaker row \(never tripped\)\nNo transitions recorded\./)
    const missing = await runCli(['breakers', 'history', '--db', path])
    assert.equal(missing.code, 2)
  })
})

describe('facts', () => {
  it('seq desc, legacy NULL seq last by created_at desc, --type and --limit', async () => {
    const {db, path} = freshDb()
    const legacyOld = insertFact(db, {seq: null, created_at: ago(5 * HOUR)})
    const legacyNew = insertFact(db, {seq: null, created_at: ago(4 * HOUR)})
    const s1 = insertFact(db, {seq: 1, created_at: ago(3 * HOUR)})
    const s2 = insertFact(db, {seq: 2, created_at: ago(2 * HOUR), fact_type: 'file_watch.other', fact_json: '{"files":2}'})
    insertFact(db, {seq: 3, plugin_name: 'other'})
    db.close()
    const j = await runCli(['facts', 'file_watch', '--db', path, '--json'])
    assert.deepEqual(
      j.json().facts.map((f: {id: string}) => f.id),
      [s2.id, s1.id, legacyNew.id, legacyOld.id],
    )
    assert.deepEqual(j.json().facts[0].fact, {files: 2})
    const t = await runCli(['facts', 'file_watch', '--db', path, '--type', 'file_watch.other', '--json'])
    assert.deepEqual(
      t.json().facts.map((f: {id: string}) => f.id),
      [s2.id],
    )
    const l = await runCli(['facts', 'file_watch', '--db', path, '--limit', '3', '--json'])
    assert.equal(l.json().facts.length, 3)
    const h = await runCli(['facts', 'file_watch', '--db', path, '--limit', '1'])
    assert.match(h.stdout, /seq 2 .*file_watch\.other/)
    assert.match(h.stdout, /"files": 2/)
    const none = await runCli(['facts', 'nope', '--db', path])
    assert.equal(none.code, 0)
    assert.equal(none.stdout.trim(), 'No facts for plugin nope.')
    const bad = await runCli(['facts', 'file_watch', '--limit', '0', '--db', path])
    assert.equal(bad.code, 2)
  })
})

describe('state', () => {
  it('pretty JSON of the compatibility view; {} and exit 0 for an unknown plugin', async () => {
    const {db, path} = freshDb()
    insertState(db, {plugin_name: 'my-plugin', state: '{"cursor":42,"nested":{"a":[1,2]}}'})
    db.close()
    const j = await runCli(['state', 'my-plugin', '--db', path, '--json'])
    assert.deepEqual(j.json().state, {cursor: 42, nested: {a: [1, 2]}})
    assert.equal(j.json().exists, true)
    const h = await runCli(['state', 'my-plugin', '--db', path])
    assert.match(h.stdout, /^\{\n {2}"cursor": 42,/)
    const none = await runCli(['state', 'nope', '--db', path, '--json'])
    assert.equal(none.code, 0)
    assert.deepEqual(none.json(), {plugin: 'nope', state: {}, updated_at: null, exists: false})
  })
})

describe('schedules list', () => {
  it('active schedules by next run, overdue highlighted; --all shows paused ones', async () => {
    const {db, path} = freshDb()
    const later = insertSchedule(db, {plugin: 'a', next_run_at: ago(-HOUR)})
    const overdue = insertSchedule(db, {plugin: 'b', next_run_at: ago(2 * HOUR)})
    insertSchedule(db, {plugin: 'c', status: 'paused_manual', reason: 'maintenance window'})
    db.close()
    const j = await runCli(['schedules', 'list', '--db', path, '--json'])
    const s = j.json().schedules
    assert.deepEqual(
      s.map((x: {plugin: string}) => x.plugin),
      [overdue.plugin, later.plugin],
    )
    assert.ok(s[0].overdue_ms >= 2 * HOUR - 1000)
    assert.equal(s[1].overdue_ms, 0)
    const h = await runCli(['schedules', 'list', '--db', path])
    assert.match(h.stdout, /OVERDUE/)
    const all = await runCli(['schedules', 'list', '--db', path, '--all'])
    assert.match(all.stdout, /paused_manual \(maintenance window\)/)
    const none = await runCli(['schedules', 'list', '--db', path, '--plugin', 'nope'])
    assert.equal(none.stdout.trim(), 'No active schedules.')
  })
})

describe('db info', () => {
  it('sizes, pragmas, schema version and rows per table', async () => {
    const {db, path} = freshDb()
    insertJob(db)
    insertJob(db)
    db.close()
    const j = await runCli(['db', 'info', '--db', path, '--json'])
    const r = j.json()
    assert.equal(r.store, STORE)
    if (onPostgres) {
      assert.match(r.serverVersion, /^\d+/)
      assert.ok(r.databaseBytes > 0)
      assert.equal(r.path, path, 'the URL (it has no password here)')
    } else {
      assert.equal(r.journalMode, 'wal')
      assert.equal(r.synchronous, 1)
      assert.equal(r.autoVacuum, 2)
      assert.ok(r.fileBytes > 0)
    }
    assert.equal(r.schema.kind, 'ours')
    assert.equal(r.tables.find((t: {table: string}) => t.table === 'job_queue').rows, 2)
    const h = await runCli(['db', 'info', '--db', path])
    assert.match(h.stdout, onPostgres ? /server {8}PostgreSQL \d+/ : /journal_mode {2}wal {3}synchronous NORMAL \(1\)/)
    assert.match(h.stdout, /job_queue\s*│\s*2/)
  })
})
