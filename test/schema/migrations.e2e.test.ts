import assert from 'node:assert/strict'
import {statSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {openDb} from '../../src/schema/db.js'
import {TABLES} from '../../src/schema/definition.js'
import {DROPPED_INDEXES, INDEXES} from '../../src/schema/indexes.js'
import {LATEST_VERSION, assertSchemaCurrent, checkSchema, migrate, schemaState} from '../../src/schema/migrations.js'
import {runCli} from '../helpers/cli.js'
import {insertLog} from '../helpers/fixtures.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {createOriginalDb} from '../helpers/original.js'
import {lite} from '../helpers/store.js'

function seedOriginal(path: string, opts: {withoutIndexes?: string[]} = {}) {
  const raw = createOriginalDb(path, opts)
  raw.exec(`
    INSERT INTO job_queue (id, plugin, command, payload, status, attempt, max_attempts, submitted_by, created_at, started_at, completed_at)
      VALUES ('j1', 'file_watch', 'poll', '{}', 'succeeded', 1, 4, 'ductile', '2026-11-27T10:00:00Z', '2026-11-27T10:00:01.5Z', '2026-11-27T10:00:03.123456789Z');
    INSERT INTO job_attempts (job_id, attempt, created_at) VALUES ('j1', 1, '2026-11-27T10:00:01.5Z');
    INSERT INTO job_transitions (job_id, from_status, to_status, created_at) VALUES ('j1', NULL, 'queued', '2026-11-27T10:00:00Z');
    INSERT INTO job_log (id, job_id, plugin, command, status, result, attempt, submitted_by, created_at, completed_at)
      VALUES ('j1-1', 'j1', 'file_watch', 'poll', 'succeeded', '{}', 1, 'ductile', '2026-11-27T10:00:00Z', '2026-11-27T10:00:03.123456789Z');
    INSERT INTO plugin_facts (id, seq, plugin_name, fact_type, job_id, command, fact_json, created_at) VALUES
      ('f0', NULL, 'file_watch', 'snap', 'j0', 'poll', '{"legacy":true}', '2026-11-26T09:00:00Z'),
      ('f1', 5, 'file_watch', 'snap', 'j1', 'poll', '{"n":5}', '2026-11-27T10:00:03Z'),
      ('f2', 7, 'file_watch', 'snap', 'j1', 'poll', '{"n":7}', '2026-11-27T10:00:04+02:00');
    INSERT INTO storage_sequences (name, value) VALUES ('plugin_facts', 3);
    INSERT INTO circuit_breakers (plugin, command, state, failure_count, opened_at, updated_at) VALUES ('file_watch', 'poll', 'open', 3, '2026-11-27T09:00:00Z', '2026-11-27T09:00:00Z');
    INSERT INTO schedule_entries (plugin, schedule_id, command, status, next_run_at, updated_at) VALUES ('file_watch', 'default', 'poll', 'active', '2026-11-27T11:00:00Z', '2026-11-27T10:00:00Z');
  `)
  return raw
}

describe('db init', () => {
  it('creates every table and index, incremental auto-vacuum, WAL, private file modes', () => {
    const {db, path, dir} = freshDb()
    const {problems, state} = checkSchema(db)
    assert.deepEqual(problems, [])
    assert.equal(state.version, LATEST_VERSION)
    assert.equal(lite(db).sqlite.pragma('auto_vacuum', {simple: true}), 2)
    assert.equal(lite(db).sqlite.pragma('journal_mode', {simple: true}), 'wal')
    const tables = lite(db).sqlite.prepare(`SELECT name FROM sqlite_master WHERE type='table'`).pluck().all() as string[]
    for (const t of TABLES) assert.ok(tables.includes(t.name), t.name)
    const idx = lite(db).sqlite.prepare(`SELECT name FROM sqlite_master WHERE type='index'`).pluck().all() as string[]
    for (const i of INDEXES) assert.ok(idx.includes(i.name), i.name)
    const unique = lite(db).sqlite.prepare(`SELECT sql FROM sqlite_master WHERE name='job_queue_event_source_idx'`).pluck().get() as string
    assert.match(unique, /UNIQUE INDEX.*WHERE source_event_id IS NOT NULL/)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(statSync(dir).mode & 0o077, 0, 'the temp dir itself is private')
    db.close()
  })

  it('creates a missing directory 0700 and the file 0600 through the CLI, and is a no-op the second time', async () => {
    const dir = join(tempDir(), 'state', 'nested')
    const path = join(dir, 'ductile.db')
    const first = await runCli(['db', 'init', '--db', path, '--json'])
    assert.equal(first.code, 0, first.stderr)
    assert.deepEqual(first.json(), {path, created: true, version: LATEST_VERSION})
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const second = await runCli(['db', 'init', '--db', path])
    assert.equal(second.code, 0)
    assert.match(second.stdout, /already initialised/)
  })
})

describe('db check', () => {
  it('names each missing index and column with the command that fixes it, exit 1', async () => {
    const {db, path} = freshDb()
    lite(db).sqlite.exec('DROP INDEX job_log_failed_plugin_completed_idx')
    db.close()
    const r = await runCli(['db', 'check', '--db', path])
    assert.equal(r.code, 1)
    assert.match(r.stdout, /missing: missing index job_log_failed_plugin_completed_idx on job_log\(plugin, completed_at\)/)
    assert.ok(r.stdout.includes(`fix: ductile db migrate --db ${path}`))
    const j = await runCli(['db', 'check', '--db', path, '--json'])
    assert.equal(j.code, 1)
    assert.equal(j.json().ok, false)
    assert.equal(j.json().problems[0].name, 'job_log_failed_plugin_completed_idx')
  })

  it('passes a current database', async () => {
    const {db, path} = freshDb()
    db.close()
    const r = await runCli(['db', 'check', '--db', path])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /all tables, columns and indexes present/)
  })
})

describe('db migrate from the original Go Ductile', () => {
  it('read commands refuse the original format and name db migrate', async () => {
    const path = join(tempDir(), 'state.db')
    seedOriginal(path).close()
    const r = await runCli(['jobs', 'status', '--db', path])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /written by the original Go Ductile/)
    assert.match(r.stderr, /ductile db migrate --db/)
    const check = await runCli(['db', 'check', '--db', path, '--json'])
    assert.equal(check.code, 1)
    const names = check.json().problems.map((p: {name: string}) => p.name)
    assert.ok(names.includes('job_log.started_at'), 'names the missing started_at column')
  })

  it('rewrites every timestamp, adds started_at, keeps NULL seq, seeds the sequence', async () => {
    const path = join(tempDir(), 'state.db')
    seedOriginal(path).close()
    const r = await runCli(['db', 'migrate', '--db', path, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json().was, 'original')
    assert.equal(r.json().to, LATEST_VERSION)

    const db = openDb(path, {mode: 'read'})
    assertSchemaCurrent(db)
    const job = db.query(`SELECT created_at, started_at, completed_at FROM job_queue WHERE id='j1'`)[0]
    assert.deepEqual(job, {created_at: '2026-11-27 10:00:00.000', started_at: '2026-11-27 10:00:01.500', completed_at: '2026-11-27 10:00:03.123'})
    const log = db.query(`SELECT created_at, completed_at, started_at FROM job_log WHERE id='j1-1'`)[0]
    assert.deepEqual(log, {created_at: '2026-11-27 10:00:00.000', completed_at: '2026-11-27 10:00:03.123', started_at: '2026-11-27 10:00:01.500'})
    const facts = db.query(`SELECT id, seq, created_at FROM plugin_facts ORDER BY id`)
    assert.deepEqual(facts, [
      {id: 'f0', seq: null, created_at: '2026-11-26 09:00:00.000'},
      {id: 'f1', seq: 5, created_at: '2026-11-27 10:00:03.000'},
      {id: 'f2', seq: 7, created_at: '2026-11-27 08:00:04.000'},
    ])
    assert.equal(db.sqlite.prepare(`SELECT value FROM storage_sequences WHERE name='plugin_facts'`).pluck().get(), 7)
    assert.equal(db.sqlite.prepare(`SELECT opened_at FROM circuit_breakers`).pluck().get(), '2026-11-27 09:00:00.000')
    assert.equal(db.sqlite.prepare(`SELECT next_run_at FROM schedule_entries`).pluck().get(), '2026-11-27 11:00:00.000')
    assert.equal(db.sqlite.prepare(`SELECT created_at FROM job_transitions`).pluck().get(), '2026-11-27 10:00:00.000')
    const leftovers = db.sqlite.prepare(`SELECT COUNT(*) FROM job_queue WHERE created_at LIKE '%T%' OR completed_at LIKE '%Z'`).pluck().get()
    assert.equal(leftovers, 0)
    db.close()

    const facts2 = await runCli(['facts', 'file_watch', '--db', path, '--json'])
    assert.equal(facts2.code, 0, facts2.stderr)
    assert.deepEqual(
      facts2.json().facts.map((f: {id: string}) => f.id),
      ['f2', 'f1', 'f0'],
      'seq desc, legacy NULL last',
    )
  })

  it('a failing step leaves the file as it was and names the step', async () => {
    const path = join(tempDir(), 'state.db')
    const raw = seedOriginal(path, {withoutIndexes: ['job_queue_event_source_idx']})
    // Two routed jobs for the same (parent, event, plugin, command): the UNIQUE index cannot be built.
    raw.exec(`INSERT INTO job_queue (id, plugin, command, status, submitted_by, created_at, parent_job_id, source_event_id)
      VALUES ('r1', 'notify', 'handle', 'succeeded', 'route', '2026-11-27T10:00:00Z', 'j1', 'e1'),
             ('r2', 'notify', 'handle', 'succeeded', 'route', '2026-11-27T10:00:01Z', 'j1', 'e1')`)
    raw.close()
    const r = await runCli(['db', 'migrate', '--db', path])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /migration 1 \(tables, columns and indexes\) failed at step "create index job_queue_event_source_idx"/)
    assert.match(r.stderr, /nothing was changed/)
    const db = openDb(path, {mode: 'read'})
    assert.equal(schemaState(db).kind, 'original')
    assert.equal(db.sqlite.prepare(`SELECT created_at FROM job_queue WHERE id='j1'`).pluck().get(), '2026-11-27T10:00:00Z')
    const cols = db.sqlite.prepare(`SELECT name FROM pragma_table_info('job_log')`).pluck().all()
    assert.ok(!cols.includes('started_at'))
    db.close()
  })
})

describe('schema versions', () => {
  it('refuses a database newer than the program, for reads and for migrate', async () => {
    const {db, path} = freshDb()
    db.query(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2027-01-01 00:00:00.000')`)
    db.close()
    const r = await runCli(['jobs', 'list', '--db', path])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /schema version 99, newer than this ductile understands/)
    const m = await runCli(['db', 'migrate', '--db', path, '--json'])
    assert.equal(m.code, 1)
    assert.equal(m.json().error.code, 'db_newer')
  })

  it('an older version of ours is behind: reads name db migrate, migrate brings it current', async () => {
    const {db, path} = freshDb()
    lite(db).sqlite.exec(`DELETE FROM schema_migrations WHERE version = ${LATEST_VERSION}`)
    db.close()
    const r = await runCli(['jobs', 'status', '--db', path, '--json'])
    assert.equal(r.code, 1)
    assert.equal(r.json().error.code, 'db_behind')
    assert.match(r.json().error.hint, /ductile db migrate/)
    const w = openDb(path, {mode: 'write'})
    const res = migrate(w)
    assert.deepEqual(
      res.applied.map((a) => a.version),
      [LATEST_VERSION],
    )
    assertSchemaCurrent(w)
    w.close()
  })

  it("migrations 4 to 6 bring a version-3 file to the indexes of prune and of the reference's own SQL", () => {
    const {db} = freshDb()
    insertLog(db, {status: 'failed'})
    insertLog(db, {status: 'succeeded'})
    // The indexes of a version-3 file.
    lite(db).sqlite.exec(`DROP INDEX job_log_failed_plugin_command_idx; DROP INDEX job_log_succeeded_sec_idx;
      DROP INDEX job_log_unsucceeded_status_completed_idx; DROP INDEX plugin_facts_reference_order_idx;
      CREATE INDEX job_log_succeeded_duration_idx ON job_log (substr(completed_at, 1, 10),
        (strftime('%s', completed_at) - strftime('%s', started_at)), (julianday(completed_at) - julianday(started_at)))
        WHERE status = 'succeeded';
      CREATE INDEX job_log_status_completed_idx ON job_log (status, completed_at);
      CREATE INDEX plugin_facts_plugin_seq_created_idx ON plugin_facts (plugin_name, seq, created_at);
      DELETE FROM schema_migrations WHERE version >= 4; ANALYZE`)
    const res = migrate(db)
    assert.deepEqual(
      res.applied.map((a) => a.version),
      // (7, the engines table, is already there: it runs again and changes nothing.)
      [4, 5, 6, 7],
    )
    const sqlOf = (name: string) => lite(db).sqlite.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).pluck().get(name) as string | undefined
    for (const gone of DROPPED_INDEXES) assert.equal(sqlOf(gone), undefined, `${gone} is dropped`)
    assert.match(sqlOf('job_log_failed_plugin_command_idx') ?? '', /\(plugin, command, completed_at\) WHERE status = 'failed'/)
    assert.match(
      sqlOf('job_log_succeeded_sec_idx') ?? '',
      /\(\(strftime\('%s', completed_at\) - strftime\('%s', started_at\)\) DESC, completed_at DESC\) WHERE status = 'succeeded'/,
    )
    assert.match(sqlOf('plugin_facts_reference_order_idx') ?? '', /CASE WHEN seq IS NULL THEN 1 ELSE 0 END, seq DESC, created_at DESC/)
    assert.deepEqual(checkSchema(db).problems, [])
    const analyzed = lite(db).sqlite.prepare(`SELECT idx FROM sqlite_stat1`).pluck().all() as string[]
    // (plugin_facts is empty here: ANALYZE writes no row for its indexes.)
    for (const name of ['job_log_failed_plugin_command_idx', 'job_log_succeeded_sec_idx']) assert.ok(analyzed.includes(name), `statistics for ${name}`)
  })
})
