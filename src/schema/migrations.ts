import {DuctileError, errorMessage} from '../errors.js'
import {type Db, SqliteDb} from './db.js'
import {type IndexDef, REQUIRED_TABLES, TABLES, type TableDef, addColumnSql, createTableSql} from './definition.js'
import {DROPPED_INDEXES, INDEXES, createIndexSql} from './indexes.js'
import {SCHEMA_LOCK_KEY, pgEnsureSchema, pgExistingIndexes, pgExistingTables, pgTableColumns} from './pg-schema.js'
import {nowTs} from './time.js'

/** One step per index, named after it (CREATE INDEX IF NOT EXISTS: a file that has it is left as it is). */
function createIndexSteps(indexes: readonly IndexDef[]): MigrationStep[] {
  return indexes.map((i) => ({name: `create index ${i.name}`, run: (db: Db) => db.exec(createIndexSql(i))}))
}

/** Whether the file has statistics (ANALYZE or PRAGMA optimize ran): new indexes then need theirs too. */
function hasStatistics(db: Db): boolean {
  return db.query(`SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'`).length > 0
}

function tableNamed(name: string): TableDef {
  const table = TABLES.find((t) => t.name === name)
  if (!table) throw new Error(`no table ${name} in the schema definition`)
  return table
}

function indexNamed(name: string): (typeof INDEXES)[number] {
  const index = INDEXES.find((i) => i.name === name)
  if (!index) throw new Error(`no index ${name} in the schema definition`)
  return index
}

/** The slowest-jobs index of migrations 1–4 (keyed by UTC day, then by hour; replaced in migration 5). */
const SLOWEST_INDEX_NAME = 'job_log_succeeded_duration_idx'
const REFERENCE_INDEXES = ['job_log_succeeded_sec_idx', 'job_log_unsucceeded_status_completed_idx', 'plugin_facts_reference_order_idx'].map(indexNamed)

/**
 * Numbered migrations, recorded in `schema_migrations`. All pending migrations run in one
 * BEGIN IMMEDIATE transaction: when a step fails, the file is as it was, and the error names the step.
 *
 * Migration 1 brings any Ductile database (empty, the original Go engine's, or an older one of ours) to the
 * table, column and index shape of definition.ts; later ones move data.
 */

export interface MigrationStep {
  name: string
  run(db: Db): void
}

export interface Migration {
  version: number
  name: string
  steps(db: Db): MigrationStep[]
}

function tableColumns(db: Db, table: string): Set<string> {
  if (db.kind === 'postgres') return pgTableColumns(db, table)
  return new Set(db.query(`SELECT name FROM pragma_table_info(?)`, [table]).map((r) => String(r.name)))
}

export function existingTables(db: Db): Set<string> {
  if (db.kind === 'postgres') return pgExistingTables(db)
  return new Set(db.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).map((r) => String(r.name)))
}

function existingIndexes(db: Db): Set<string> {
  if (db.kind === 'postgres') return pgExistingIndexes(db)
  return new Set(db.query(`SELECT name FROM sqlite_master WHERE type = 'index'`).map((r) => String(r.name)))
}

function ensureTableSteps(t: TableDef): MigrationStep[] {
  return [
    {
      name: `create or complete table ${t.name}`,
      run(db) {
        db.exec(createTableSql(t))
        const have = tableColumns(db, t.name)
        for (const col of t.columns) if (!have.has(col.name)) db.exec(addColumnSql(t.name, col))
      },
    },
  ]
}

const SCHEMA_MIGRATIONS_DDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'tables, columns and indexes',
    steps: () => [...TABLES.flatMap(ensureTableSteps), ...createIndexSteps(INDEXES)],
  },
  {
    version: 2,
    name: 'timestamps in the stored layout',
    steps: () => [
      // The original wrote RFC 3339 (`2026-11-27T20:41:07.5Z`); ours is `2026-11-27 20:41:07.500`.
      // SQLite's strftime parses the original's layout, fraction and offset included, and gives ours back.
      ...TABLES.flatMap((t) =>
        t.columns
          .filter((c) => c.ts)
          .map((c) => ({
            name: `rewrite ${t.name}.${c.name}`,
            run(db: Db) {
              db.exec(`UPDATE ${t.name} SET ${c.name} = COALESCE(strftime('%Y-%m-%d %H:%M:%f', ${c.name}), ${c.name}) ` + `WHERE ${c.name} LIKE '____-__-__T%'`)
            },
          })),
      ),
      {
        // The original has no job_log.started_at: an attempt started when it was claimed (job_attempts).
        name: 'fill job_log.started_at from job_attempts',
        run(db) {
          db.exec(
            `UPDATE job_log SET started_at = (SELECT a.created_at FROM job_attempts a
               WHERE a.job_id = job_log.job_id AND a.attempt = job_log.attempt)
             WHERE started_at IS NULL AND job_id IS NOT NULL`,
          )
        },
      },
    ],
  },
  {
    version: 3,
    name: 'plugin_facts sequence',
    steps: () => [
      {
        // Legacy facts keep seq NULL; the allocator continues after the highest existing seq.
        name: 'seed storage_sequences from plugin_facts',
        run(db) {
          db.exec(
            `INSERT INTO storage_sequences (name, value)
               SELECT 'plugin_facts', COALESCE(MAX(seq), 0) FROM plugin_facts WHERE true
             ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`,
          )
        },
      },
    ],
  },
  {
    version: 4,
    name: 'indexes that let prune rewrite each page about once',
    steps: () => [
      ...createIndexSteps([indexNamed('job_log_failed_plugin_command_idx')]),
      {
        // Versions 1–3 keyed it by UTC day, which made every prune batch rewrite the whole day's leaves. It was
        // rebuilt keyed by hour here; migration 5 replaced it, so now the old one is only dropped.
        name: `drop the day-keyed ${SLOWEST_INDEX_NAME}`,
        run: (db) => db.exec(`DROP INDEX IF EXISTS ${SLOWEST_INDEX_NAME}`),
      },
      {
        // In a file that has statistics, an index without any looks cheap to the planner: `jobs logs --plugin
        // --status failed` went from 0.6 ms to 11 ms on the new failure index until it was analyzed.
        name: 'statistics for the new indexes',
        run(db) {
          if (hasStatistics(db)) db.exec('ANALYZE job_log_failed_plugin_command_idx')
        },
      },
    ],
  },
  {
    version: 5,
    name: "indexes that answer the reference's own SQL",
    steps: () => [
      ...DROPPED_INDEXES.map((name) => ({name: `drop index ${name}`, run: (db: Db) => db.exec(`DROP INDEX IF EXISTS ${name}`)})),
      ...createIndexSteps(REFERENCE_INDEXES),
      {
        // As `PRAGMA optimize` takes them (sampled, analysis_limit 2000), for every index of the two tables:
        // exact counts for the new indexes beside sampled ones for the old made sqlite3 prefer an old index
        // and sort 25,000 facts (53 ms) over the new one's 20 rows.
        name: 'statistics for the new indexes',
        run(db) {
          if (hasStatistics(db)) db.exec('PRAGMA analysis_limit = 2000; ANALYZE job_log; ANALYZE plugin_facts; PRAGMA analysis_limit = 0')
        },
      },
    ],
  },
  {
    version: 6,
    name: "the scheduler's decisions and dedupe hits as facts",
    steps: () => [
      ...ensureTableSteps(tableNamed('schedule_decisions')),
      ...ensureTableSteps(tableNamed('dedupe_hits')),
      ...createIndexSteps(
        [
          'schedule_decisions_schedule_idx',
          'schedule_decisions_created_at_idx',
          'schedule_decisions_job_idx',
          'dedupe_hits_job_idx',
          'dedupe_hits_created_at_idx',
        ].map(indexNamed),
      ),
    ],
  },
  {
    version: 7,
    name: 'engines with heartbeats, and which engine claimed each attempt',
    steps: () => [
      ...ensureTableSteps(tableNamed('engines')),
      ...ensureTableSteps(tableNamed('job_attempts')),
      ...createIndexSteps(['engines_alive_idx', 'job_attempts_engine_idx'].map(indexNamed)),
    ],
  },
]

export const LATEST_VERSION = Math.max(...MIGRATIONS.map((m) => m.version))

/** empty: no tables; original: the Go Ductile's format; ours: migrated by us; foreign: any other SQLite file. */
export type SchemaKind = 'empty' | 'original' | 'ours' | 'foreign'

/** What every Ductile database has, ours or the original's: recognised positively, never guessed from "has tables". */
const CORE_TABLES: Record<string, string[]> = {
  job_queue: ['id', 'plugin', 'command', 'payload', 'status', 'attempt', 'max_attempts', 'created_at'],
  job_log: ['id', 'job_id', 'plugin', 'command', 'status', 'created_at'],
  plugin_state: ['plugin_name', 'state'],
}

function hasCoreTables(db: Db, tables: Set<string>): boolean {
  return Object.entries(CORE_TABLES).every(([t, cols]) => {
    if (!tables.has(t)) return false
    const have = tableColumns(db, t)
    return cols.every((c) => have.has(c))
  })
}

export interface SchemaState {
  kind: SchemaKind
  /** Highest applied migration; 0 for empty and original databases. */
  version: number
  latest: number
}

export function schemaState(db: Db): SchemaState {
  const tables = existingTables(db)
  if (tables.size === 0) return {kind: 'empty', version: 0, latest: LATEST_VERSION}
  if (!hasCoreTables(db, tables) || (tables.has('schema_migrations') && !tableColumns(db, 'schema_migrations').has('version'))) {
    return {kind: 'foreign', version: 0, latest: LATEST_VERSION}
  }
  if (!tables.has('schema_migrations')) return {kind: 'original', version: 0, latest: LATEST_VERSION}
  const v = db.query('SELECT MAX(version) AS v FROM schema_migrations')[0]?.v
  return {kind: 'ours', version: v === null || v === undefined ? 0 : Number(v), latest: LATEST_VERSION}
}

/** Read and write commands call this: the schema must be exactly the one this program knows. */
export function assertSchemaCurrent(db: Db): void {
  const s = schemaState(db)
  const fix = `ductile db migrate --db ${db.path}`
  if (s.kind === 'empty') {
    throw new DuctileError('db_uninitialised', `${db.path} has no Ductile schema`, {
      hint: `create it with \`ductile db init --db ${db.path}\``,
    })
  }
  if (s.kind === 'foreign') throw notDuctile(db)
  if (s.kind === 'original') {
    throw new DuctileError('db_original_format', `${db.path} was written by the original Go Ductile (RFC 3339 timestamps, no job_log.started_at)`, {
      hint: `bring it over with \`${fix}\` (one transaction; back it up first with \`ductile db backup\`)`,
    })
  }
  if (s.version > s.latest) {
    throw new DuctileError('db_newer', `${db.path} has schema version ${s.version}, newer than this ductile understands (${s.latest})`, {
      hint: 'upgrade ductile to the version that wrote this database; nothing was changed',
    })
  }
  if (s.version < s.latest) {
    throw new DuctileError('db_behind', `${db.path} has schema version ${s.version}; this ductile needs ${s.latest}`, {
      hint: `run \`${fix}\``,
    })
  }
}

function notDuctile(db: Db): DuctileError {
  return new DuctileError('db_foreign', `${db.path} is not a Ductile database: it has tables, but not Ductile's job_queue, job_log and plugin_state`, {
    hint: 'check --db / DUCTILE_DB / state.path; nothing was changed. `ductile db init --db NEW_PATH` creates a new database',
  })
}

/**
 * Before a write connection changes anything (WAL mode, permissions, tables): the file must be empty (to be
 * created) or a current Ductile database. `db init` and the engine's first start.
 */
export function assertInitialisable(db: Db): void {
  if (schemaState(db).kind !== 'empty') assertSchemaCurrent(db)
}

/** Before `db migrate` changes anything: a Ductile database (ours or the original's) no newer than this program. */
export function assertMigratable(db: Db): void {
  const s = schemaState(db)
  if (s.kind === 'foreign' || s.version > s.latest) assertSchemaCurrent(db)
}

export interface MigrateResult {
  from: number
  to: number
  kind: SchemaKind
  applied: {version: number; name: string}[]
}

export function migrate(db: Db, onStep?: (migration: Migration, step: MigrationStep) => void): MigrateResult {
  assertMigratable(db)
  const before = schemaState(db)
  const pending = MIGRATIONS.filter((m) => m.version > before.version)
  const applied: {version: number; name: string}[] = []
  if (pending.length === 0) return {from: before.version, to: before.version, kind: before.kind, applied}
  if (db.kind === 'postgres') return migratePg(db, before, pending, onStep)
  db.tx(() => {
    db.exec(SCHEMA_MIGRATIONS_DDL)
    for (const m of pending) {
      for (const step of m.steps(db)) {
        onStep?.(m, step)
        try {
          step.run(db)
        } catch (err) {
          throw new DuctileError('migration_failed', `migration ${m.version} (${m.name}) failed at step "${step.name}": ${errorMessage(err)}`, {
            hint: 'nothing was changed (the migration runs in one transaction); fix the cause and run `ductile db migrate` again',
            cause: err,
          })
        }
      }
      db.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, nowTs()])
      applied.push({version: m.version, name: m.name})
    }
  })
  return {from: before.version, to: LATEST_VERSION, kind: before.kind, applied}
}

/**
 * PostgreSQL databases are created by us at the latest version (the original Go Ductile never wrote one), so a
 * migration there is the schema brought to the definition (pg-schema.ts) and the versions recorded, in one
 * transaction under an advisory lock: engines starting together on an empty database create it once.
 */
function migratePg(db: Db, before: SchemaState, pending: Migration[], onStep?: (migration: Migration, step: MigrationStep) => void): MigrateResult {
  const last = pending[pending.length - 1] as Migration
  const applied = db.tx(() => {
    // Before anything is created: two engines starting on an empty database would race on CREATE TABLE.
    db.query('SELECT pg_advisory_xact_lock(?)', [SCHEMA_LOCK_KEY])
    db.exec(SCHEMA_MIGRATIONS_DDL)
    pgEnsureSchema(db, (name) => onStep?.(last, {name, run: () => {}}))
    // Another engine may have done it while this one waited for the lock.
    const done = new Set(db.query('SELECT version FROM schema_migrations').map((r) => Number(r.version)))
    const todo = pending.filter((m) => !done.has(m.version))
    for (const m of todo) db.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, nowTs()])
    return todo.map((m) => ({version: m.version, name: m.name}))
  })
  return {from: before.version, to: LATEST_VERSION, kind: before.kind, applied}
}

export interface SchemaProblem {
  kind: 'table' | 'column' | 'index' | 'version'
  name: string
  message: string
  fix: string
  /** A soft table or our own index: the database works without it, only slower or with less detail. */
  severity: 'error' | 'warning'
}

/** Validate the schema without changing it: every missing table, column or index with the command that fixes it. */
export function checkSchema(db: Db): {state: SchemaState; problems: SchemaProblem[]} {
  const state = schemaState(db)
  const fix = `ductile db migrate --db ${db.path}`
  const problems: SchemaProblem[] = []
  if (state.kind === 'empty') {
    problems.push({
      kind: 'version',
      name: 'schema',
      message: 'the database has no tables',
      fix: `ductile db init --db ${db.path}`,
      severity: 'error',
    })
    return {state, problems}
  }
  if (state.kind === 'foreign') {
    problems.push({
      kind: 'version',
      name: 'schema',
      message: "not a Ductile database (no job_queue, job_log and plugin_state of Ductile's shape)",
      fix: 'check --db; nothing here can fix it',
      severity: 'error',
    })
    return {state, problems}
  }
  const tables = existingTables(db)
  const indexes = existingIndexes(db)
  for (const t of TABLES) {
    if (!tables.has(t.name)) {
      problems.push({
        kind: 'table',
        name: t.name,
        message: `missing table ${t.name}`,
        fix,
        severity: REQUIRED_TABLES.includes(t.name) ? 'error' : 'warning',
      })
      continue
    }
    const cols = tableColumns(db, t.name)
    for (const col of t.columns) {
      if (!cols.has(col.name)) {
        problems.push({kind: 'column', name: `${t.name}.${col.name}`, message: `missing column ${t.name}.${col.name}`, fix, severity: 'error'})
      }
    }
  }
  for (const i of INDEXES) {
    if (!tables.has(i.table)) continue
    if (!indexes.has(i.name)) {
      problems.push({
        kind: 'index',
        name: i.name,
        message: `missing index ${i.name} on ${i.table}(${i.columns.join(', ')})`,
        fix,
        severity: 'error',
      })
    }
  }
  if (state.kind === 'original') {
    problems.push({
      kind: 'version',
      name: 'schema_migrations',
      message: 'written by the original Go Ductile: timestamps are RFC 3339 and no migration is recorded',
      fix,
      severity: 'error',
    })
  } else if (state.version < state.latest) {
    problems.push({kind: 'version', name: 'schema_migrations', message: `schema version ${state.version} is behind ${state.latest}`, fix, severity: 'error'})
  } else if (state.version > state.latest) {
    problems.push({
      kind: 'version',
      name: 'schema_migrations',
      message: `schema version ${state.version} is newer than this ductile (${state.latest})`,
      fix: 'upgrade ductile',
      severity: 'error',
    })
  }
  return {state, problems}
}

/** Create the schema in an empty file, with incremental auto-vacuum. */
export function initSchema(db: Db): MigrateResult {
  const state = schemaState(db)
  if (state.kind === 'empty' && db.kind === 'postgres') return migrate(db)
  if (state.kind === 'empty' && db instanceof SqliteDb) {
    const av = db.sqlite.pragma('auto_vacuum', {simple: true})
    if (av !== 2) {
      db.sqlite.pragma('auto_vacuum = INCREMENTAL')
      // The setting takes effect on an empty file only after a VACUUM rewrites the header.
      db.exec('VACUUM')
    }
    return migrate(db)
  }
  assertSchemaCurrent(db)
  return {from: state.version, to: state.version, kind: state.kind, applied: []}
}
