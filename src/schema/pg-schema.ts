import type {Db} from './db.js'
import {type ColumnDef, TABLES, type TableDef} from './definition.js'
import {DROPPED_INDEXES, INDEXES} from './indexes.js'
import type {IndexDef} from './definition.js'

/**
 * The schema's PostgreSQL spelling, from the same definition as SQLite's (definition.ts, indexes.ts).
 *
 * - Text stays text, timestamps included (`2026-11-30 23:10:48.123`, UTC, as on SQLite): every query, the
 *   reference's included, compares and sorts them the same way on both stores, and `db copy` moves rows
 *   unchanged. Columns collate "C" (byte order, as SQLite's BINARY): ids, names and timestamps sort alike
 *   whatever the database's locale.
 * - JSON columns are text too: a payload is stored byte for byte as written; a query that looks inside
 *   casts (`payload::jsonb ->> 'key'`).
 * - INTEGER is bigint; an AUTOINCREMENT key is an identity column.
 * - Two immutable functions give timestamps' seconds and milliseconds (ductile_sec, ductile_ms): the
 *   dialect's duration expressions (postgres.ts) and the slowest-jobs index use them; ductile_ago('1 hour')
 *   is the reference's datetime('now', '-1 hour') for operators in psql.
 */

/** Taken while the schema is created or migrated: two engines starting on an empty database do it once. */
export const SCHEMA_LOCK_KEY = 0x6475_6374 // "duct"
/** Taken by the claim of a capped plugin's or a keyed job (inside ductile_claim, until its transaction ends): see CLAIM_FUNCTION. */
export const CLAIM_LOCK_KEY = 0x6475_6375

const FUNCTIONS = [
  `CREATE OR REPLACE FUNCTION ductile_ms(t text) RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
     AS $$ SELECT extract(epoch FROM t::timestamp)::double precision * 1000 $$`,
  `CREATE OR REPLACE FUNCTION ductile_sec(t text) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
     AS $$ SELECT floor(extract(epoch FROM t::timestamp))::bigint $$`,
  // The reference's datetime('now', '-1 hour') for operators in psql: ductile_ago('1 hour'), in our layout.
  `CREATE OR REPLACE FUNCTION ductile_ago(i interval) RETURNS text LANGUAGE sql STABLE STRICT PARALLEL SAFE
     AS $$ SELECT to_char((now() AT TIME ZONE 'UTC') - i, 'YYYY-MM-DD HH24:MI:SS.MS') $$`,
]

/**
 * The claim on PostgreSQL, one statement for any number of engines: the oldest runnable queued job (FIFO by
 * created_at then id; retries wait for next_retry_at; a dedupe key runs one at a time) is locked with FOR
 * UPDATE SKIP LOCKED and moved to running with its transition and attempt rows, all in the statement's own
 * transaction. SKIP LOCKED alone makes a job one engine's. Two decisions need more: parallelism is global (a
 * plugin whose limit is global, an explicit `parallelism` or a plugin not concurrency_safe: 1, is skipped
 * while that many of its jobs run on any engine), and a dedupe key runs once at a time across engines. Both
 * must see every such claim committed before, so when the candidate is of a capped plugin or has a key, the
 * claim takes one transaction-scoped advisory lock and decides again from a statement after it (each
 * statement of a PL/pgSQL function reads a fresh snapshot under READ COMMITTED, which a single SQL statement
 * could not); a candidate that fails is skipped and the next one tried. Every claim of such a job holds the
 * lock until its transaction commits. A job of neither kind takes no lock: claims of most jobs never wait for
 * each other, whatever the number of engines. The SQLite claim (queries/queue.ts claimNextJob) is the same
 * decision in one write transaction.
 *
 * The plan is pinned to the FIFO index read from its head (job_queue_queued_fifo_idx), stopping at the first
 * runnable row: planned from statistics older than the backlog (a burst of enqueues before autovacuum's next
 * ANALYZE), PostgreSQL chose a bitmap scan and sorted every queued row for each claim (1.5 ms with 3,000
 * queued, growing with the backlog). Scans and sorts other than an index's are turned off for the function's
 * statements only (its SET clause), which leaves the index that gives the order as the cheapest plan.
 */
function CLAIM_FUNCTION(): string {
  return `CREATE OR REPLACE FUNCTION ductile_claim(p_now text, p_snapshot text, p_engine_pid bigint, p_engine_id text, p_caps jsonb, p_exclude text[])
  RETURNS SETOF job_queue LANGUAGE plpgsql
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
  AS $$
DECLARE
  j job_queue;
  skip text[] := p_exclude;
  skip_ids text[] := '{}';
  locked boolean := false;
BEGIN
  LOOP
    SELECT q.* INTO j FROM job_queue q
     WHERE q.status = 'queued'
       AND (q.next_retry_at IS NULL OR q.next_retry_at = '' OR q.next_retry_at <= p_now)
       AND NOT (q.plugin = ANY (skip))
       AND NOT (q.id = ANY (skip_ids))
       AND (q.dedupe_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM job_queue r
              WHERE r.status = 'running' AND r.dedupe_key = q.dedupe_key AND r.plugin = q.plugin AND r.command = q.command))
     ORDER BY q.created_at, q.id
     LIMIT 1
     FOR UPDATE OF q SKIP LOCKED;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    EXIT WHEN j.dedupe_key IS NULL AND NOT (p_caps ? j.plugin);
    IF NOT locked THEN
      PERFORM pg_advisory_xact_lock(${CLAIM_LOCK_KEY});
      locked := true;
    END IF;
    IF p_caps ? j.plugin AND (SELECT count(*) FROM job_queue WHERE status = 'running' AND plugin = j.plugin) >= (p_caps ->> j.plugin)::bigint THEN
      skip := skip || j.plugin;
    ELSIF j.dedupe_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM job_queue r
             WHERE r.status = 'running' AND r.dedupe_key = j.dedupe_key AND r.plugin = j.plugin AND r.command = j.command) THEN
      skip_ids := skip_ids || j.id;
    ELSE
      EXIT;
    END IF;
  END LOOP;
  UPDATE job_queue SET status = 'running', started_at = p_now, started_config_snapshot_id = p_snapshot WHERE id = j.id;
  INSERT INTO job_transitions (job_id, from_status, to_status, reason, created_at) VALUES (j.id, 'queued', 'running', NULL, p_now);
  INSERT INTO job_attempts (job_id, attempt, created_at, engine_pid, plugin_pid, plugin_started_at, engine_id)
    VALUES (j.id, j.attempt, p_now, p_engine_pid, NULL, NULL, p_engine_id)
    ON CONFLICT (job_id, attempt) DO NOTHING;
  j.status := 'running';
  j.started_at := p_now;
  j.started_config_snapshot_id := p_snapshot;
  RETURN NEXT j;
END
$$`
}

function columnType(col: ColumnDef): string {
  return col.type === 'INTEGER' ? 'bigint' : 'text COLLATE "C"'
}

function columnDdl(col: ColumnDef, pk = ''): string {
  let s = `${col.name} ${columnType(col)}${pk}`
  if (col.notNull) s += ' NOT NULL'
  if (col.default !== undefined) s += ` DEFAULT ${col.default}`
  return s
}

export function pgCreateTableSql(t: TableDef): string {
  const parts: string[] = []
  for (const col of t.columns) {
    const isPk = t.primaryKey.length === 1 && t.primaryKey[0] === col.name
    if (isPk && t.autoincrement) parts.push(`${col.name} bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY`)
    else parts.push(columnDdl(col, isPk ? ' PRIMARY KEY' : ''))
  }
  if (t.primaryKey.length > 1) parts.push(`PRIMARY KEY (${t.primaryKey.join(', ')})`)
  for (const u of t.unique ?? []) parts.push(`UNIQUE (${u.join(', ')})`)
  return `CREATE TABLE IF NOT EXISTS ${t.name} (\n  ${parts.join(',\n  ')}\n)`
}

/** An index's columns in PostgreSQL's spelling (strftime('%s', x) is ductile_sec(x)). */
export function pgIndexColumns(i: IndexDef): string[] {
  return i.columns.map((c) => c.replace(/strftime\('%s', (\w+)\)/g, 'ductile_sec($1)'))
}

export function pgCreateIndexSql(i: IndexDef): string {
  const cols = pgIndexColumns(i).map((c) => {
    const [, expr = c, dir = ''] = /^(.*?)( DESC| ASC)?$/.exec(c) ?? []
    // An expression is parenthesised (a column name, or an expression already in parentheses, stays).
    return /^\w+$/.test(expr) || (expr.startsWith('(') && expr.endsWith(')')) ? c : `(${expr})${dir}`
  })
  return `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${i.name} ON ${i.table} (${cols.join(', ')})${i.where ? ` WHERE ${i.where}` : ''}`
}

export function pgExistingTables(db: Db): Set<string> {
  const rows = db.query(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
  return new Set(rows.map((r) => String(r.name)))
}

export function pgTableColumns(db: Db, table: string): Set<string> {
  const rows = db.query('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table])
  return new Set(rows.map((r) => String(r.name)))
}

export function pgExistingIndexes(db: Db): Set<string> {
  const rows = db.query('SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()')
  return new Set(rows.map((r) => String(r.name)))
}

/**
 * Bring the schema to the definition: functions, every table and column, every index, in the caller's
 * transaction (DDL is transactional on PostgreSQL: a failure leaves the database as it was).
 */
export function pgEnsureSchema(db: Db, onStep?: (name: string) => void): void {
  db.query('SELECT pg_advisory_xact_lock(?)', [SCHEMA_LOCK_KEY])
  for (const f of FUNCTIONS) db.exec(f)
  for (const t of TABLES) {
    onStep?.(`create or complete table ${t.name}`)
    db.exec(pgCreateTableSql(t))
    const have = pgTableColumns(db, t.name)
    for (const col of t.columns) if (!have.has(col.name)) db.exec(`ALTER TABLE ${t.name} ADD COLUMN ${columnDdl(col)}`)
  }
  for (const name of DROPPED_INDEXES) db.exec(`DROP INDEX IF EXISTS ${name}`)
  for (const i of INDEXES) {
    onStep?.(`create index ${i.name}`)
    db.exec(pgCreateIndexSql(i))
  }
  // The claim's row type is job_queue's: created once the table is complete.
  db.exec(CLAIM_FUNCTION())
}
