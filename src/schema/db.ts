import BetterSqlite3 from 'better-sqlite3'
import {type Compilable, DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler} from 'kysely'
import {chmodSync, existsSync, mkdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {DuctileError} from '../errors.js'
import type {Dialect} from './dialect.js'
import {PgError, translatePgError} from './pg-errors.js'
import type {Database} from './types.js'
import {applyConnectionPragmas, applyWriterPragmas, sqliteDialect} from './sqlite.js'

/**
 * The database handle, for either store: SqliteDb (below) or PgDb (postgres.ts); open either with openStore
 * (open.ts). Queries are built with Kysely's builder (portable SQL: one set of queries for every dialect) and run
 * synchronously through better-sqlite3, so a transaction never spans an `await` (it would hold the write lock across unrelated work) and the
 * engine's hot statements are compiled once and reused.
 *
 * Everything SQLite-only (pragmas, BEGIN IMMEDIATE, checkpoints, vacuum, backup) lives in this file and
 * sqlite.ts; everything PostgreSQL-only in postgres.ts.
 */

/** Kysely used only as a query builder: the dummy driver never executes. */
export const builder = new Kysely<Database>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
})

export type Builder = typeof builder
export type Row<Q> = Q extends Compilable<infer O> ? O : never

/**
 * The named parameters of a query compiled once (see Db.prepare): `p('id')` stands for `values.id`. Its
 * type is the statement's parameter type, so a misspelled name does not compile, and `run`/`get`/`all`
 * take exactly those values.
 */
export type Param<P> = <K extends keyof P & string>(name: K) => P[K]
const SENTINEL = '\u0000ductile-param:'

export interface RunResult {
  changes: number
}

export interface Prepared<P extends object, O> {
  all(values: P): O[]
  get(values: P): O | undefined
  run(values: P): RunResult
  /**
   * A write whose result the caller does not need (an insert of a fact row). Inside a PostgreSQL transaction
   * it is sent with the next statement that needs an answer, or the COMMIT, in one round trip; its error, if
   * any, surfaces there and fails the transaction. Elsewhere (SQLite, no transaction) it is `run`.
   */
  write(values: P): void
}

/** The handle every query module takes: the same methods over either store. */
export interface Db {
  readonly kind: 'sqlite' | 'postgres'
  /** The query builder of this store's dialect. */
  readonly k: Builder
  /** What messages name: the file's absolute path, or the PostgreSQL URL without its password. */
  readonly path: string
  readonly readonly: boolean
  readonly dialect: Dialect
  readonly inTransaction: boolean
  /** Called with every statement run through all/get/run (plan tests and benchmarks read it). */
  onQuery?: (sql: string, parameters: readonly unknown[]) => void
  all<Q extends Compilable<unknown>>(query: Q): Row<Q>[]
  get<Q extends Compilable<unknown>>(query: Q): Row<Q> | undefined
  run(query: Compilable<unknown>): RunResult
  prepare<P extends object, Q extends Compilable<unknown>>(build: (p: Param<P>) => Q): Prepared<P, Row<Q>>
  /** Raw SQL with `?` placeholders (tests, the dialect modules): rows as plain objects. */
  query(sqlText: string, params?: readonly unknown[]): Record<string, unknown>[]
  /** Raw SQL, one statement or several, no parameters, no result (DDL). */
  exec(sqlText: string): void
  tx<T>(fn: () => T): T
  txEager<T>(fn: () => T, spinMs: number): T
  undoUnless<T>(fn: () => T, keep: (result: T) => boolean): T
  join<T>(fn: () => T): T
  read<T>(fn: () => T): T
  /**
   * Tell listening engines that jobs may be runnable (PostgreSQL's NOTIFY, delivered at the commit). SQLite:
   * nothing (an engine on the same file is woken by a signal, lib/lock.ts, or sees data_version change).
   */
  notify(channel: string): void
  /**
   * Inside a transaction: make other transactions that serialize on the same key wait until this one ends
   * (PostgreSQL: a transaction-scoped advisory lock; SQLite: nothing to do, its writers take turns already).
   * A read-decide-write on a shared database (a schedule's slot, a dedupe key, a plugin's state) is then the
   * same as on SQLite, whatever the number of engines.
   */
  serialize(key: string): void
  /** Hear `notify` on this channel (PostgreSQL; the open's onNotify is called). SQLite: nothing to hear. */
  listen(channel: string): void
  close(): void
}

/**
 * A query compiled once with named parameters (see Db.prepare): the builder runs with a sentinel for every
 * value; each sentinel's position in the compiled parameters maps to its name.
 */
export function compileNamed<P>(build: (p: Param<P>) => Compilable<unknown>): {
  sql: string
  parameters: readonly unknown[]
  names: (string | {constant: unknown})[]
} {
  // The sentinel stands in for every value while the builder runs; it never reaches the database.
  const sentinel = ((name: string) => SENTINEL + name) as unknown as Param<P>
  const c = build(sentinel).compile()
  const names = c.parameters.map((v) => (typeof v === 'string' && v.startsWith(SENTINEL) ? v.slice(SENTINEL.length) : {constant: v}))
  return {sql: c.sql, parameters: c.parameters, names}
}

/** The values of a compiled named query, in its parameters' order (booleans as 1 and 0: both stores store integers). */
export function bindNamed(names: readonly (string | {constant: unknown})[], values: object): unknown[] {
  return names.map((n) => {
    if (typeof n !== 'string') return n.constant
    const v = (values as Record<string, unknown>)[n]
    if (v === undefined) throw new Error(`prepared query: missing parameter "${n}"`)
    return typeof v === 'boolean' ? (v ? 1 : 0) : v
  })
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000

/** What txEager waits on between its looks for the lock (nothing ever wakes it: the wait is the nap). */
const NAP = new Int32Array(new SharedArrayBuffer(4))

export type OpenMode = 'read' | 'write' | 'create'

export interface OpenOptions {
  mode: OpenMode
  busyTimeoutMs?: number
  /**
   * Runs on the open connection before anything is written (WAL mode, permissions): throw to refuse the file,
   * which is then left exactly as it was (a foreign or empty file given to a write command).
   */
  check?: (db: Db) => void
}

export class SqliteDb implements Db {
  readonly kind = 'sqlite' as const
  readonly k = builder
  readonly dialect = sqliteDialect
  readonly path: string
  readonly sqlite: BetterSqlite3.Database
  readonly readonly: boolean
  private readonly cache = new Map<string, BetterSqlite3.Statement>()
  onQuery?: (sql: string, parameters: readonly unknown[]) => void

  constructor(path: string, sqlite: BetterSqlite3.Database, readonly: boolean) {
    this.path = path
    this.sqlite = sqlite
    this.readonly = readonly
    this.runInTx = sqlite.transaction((fn: () => unknown) => fn())
  }

  statement(sqlText: string, parameters: readonly unknown[] = []): BetterSqlite3.Statement {
    this.onQuery?.(sqlText, parameters)
    let stmt = this.cache.get(sqlText)
    if (!stmt) {
      stmt = this.sqlite.prepare(sqlText)
      this.cache.set(sqlText, stmt)
    }
    return stmt
  }

  all<Q extends Compilable<unknown>>(query: Q): Row<Q>[] {
    const c = query.compile()
    return this.statement(c.sql, c.parameters).all(...(c.parameters as unknown[])) as Row<Q>[]
  }

  get<Q extends Compilable<unknown>>(query: Q): Row<Q> | undefined {
    const c = query.compile()
    return this.statement(c.sql, c.parameters).get(...(c.parameters as unknown[])) as Row<Q> | undefined
  }

  get inTransaction(): boolean {
    return this.sqlite.inTransaction
  }

  query(sqlText: string, params: readonly unknown[] = []): Record<string, unknown>[] {
    const stmt = this.statement(sqlText, params)
    if (stmt.reader) return stmt.all(...(params as unknown[])) as Record<string, unknown>[]
    stmt.run(...(params as unknown[]))
    return []
  }

  exec(sqlText: string): void {
    this.sqlite.exec(sqlText)
  }

  run(query: Compilable<unknown>): BetterSqlite3.RunResult {
    const c = query.compile()
    const stmt = this.statement(c.sql, c.parameters)
    if (stmt.reader) {
      stmt.all(...(c.parameters as unknown[]))
      return {changes: 0, lastInsertRowid: 0}
    }
    return stmt.run(...(c.parameters as unknown[]))
  }

  /**
   * Compile a query once with named parameters: `db.prepare((p) => db.k.selectFrom('job_queue')
   * .where('id', '=', p('id')))` then `.get({id})`. The builder runs once with sentinel values; each
   * sentinel's position in the compiled parameters maps to its name. Compiled on first use: a process that
   * runs one statement of a module's set (a CLI enqueue, a read command) pays for that one only.
   */
  prepare<P extends object, Q extends Compilable<unknown>>(build: (p: Param<P>) => Q): Prepared<P, Row<Q>> {
    let compiled: {stmt: BetterSqlite3.Statement; names: (string | {constant: unknown})[]} | null = null
    const compile = () => {
      const c = compileNamed(build)
      compiled = {stmt: this.statement(c.sql, c.parameters), names: c.names}
      return compiled
    }
    const bound = (values: P): [BetterSqlite3.Statement, unknown[]] => {
      const {stmt, names} = compiled ?? compile()
      return [stmt, bindNamed(names, values)]
    }
    return {
      all: (values) => {
        const [stmt, args] = bound(values)
        return stmt.all(...args) as Row<Q>[]
      },
      get: (values) => {
        const [stmt, args] = bound(values)
        return stmt.get(...args) as Row<Q> | undefined
      },
      run: (values) => {
        const [stmt, args] = bound(values)
        return stmt.run(...args)
      },
      write: (values) => {
        const [stmt, args] = bound(values)
        stmt.run(...args)
      },
    }
  }

  // One transaction wrapper for every call (better-sqlite3 builds several functions per transaction()).
  private readonly runInTx: BetterSqlite3.Transaction<(fn: () => unknown) => unknown>

  /** A short write transaction: BEGIN IMMEDIATE, so the write lock is taken up front. */
  tx<T>(fn: () => T): T {
    return (this.readonly ? this.runInTx.deferred(fn) : this.runInTx.immediate(fn)) as T
  }

  /**
   * Work whose writes are kept only when `keep` holds for its result; otherwise they are undone (to a
   * savepoint) and the result is returned all the same. An error undoes them too and propagates. Joins the
   * caller's transaction, or runs in its own.
   */
  undoUnless<T>(fn: () => T, keep: (result: T) => boolean): T {
    if (!this.sqlite.inTransaction) return this.tx(() => this.undoUnless(fn, keep))
    const name = `ductile_undo_${++this.savepoints}`
    this.sqlite.exec(`SAVEPOINT ${name}`)
    let result: T
    try {
      result = fn()
    } catch (err) {
      this.sqlite.exec(`ROLLBACK TO ${name}; RELEASE ${name}`)
      throw err
    } finally {
      this.savepoints--
    }
    this.sqlite.exec(keep(result) ? `RELEASE ${name}` : `ROLLBACK TO ${name}; RELEASE ${name}`)
    return result
  }

  private savepoints = 0

  /**
   * Atomic work that joins the caller's transaction when there is one (no savepoint), else runs in its own
   * `tx`. Only for functions that write nothing before they can fail or return early: their error aborts
   * the caller's transaction as it propagates. A savepoint makes SQLite keep a copy of every page the inner
   * statements change, which doubled the cost of a claim inside the engine's outcome transaction (45 µs
   * against 21 µs). Where a caller must undo only the inner part (the router's skips), use `tx`.
   */
  join<T>(fn: () => T): T {
    return this.sqlite.inTransaction ? fn() : this.tx(fn)
  }

  /**
   * Like `tx`, for work that must take turns with another busy writer: asks for the lock every 50 µs for
   * up to `spinMs`, then falls back to the busy handler. SQLite's handler sleeps 1, 2, 5, 10 … 25 ms between
   * looks, so against a writer whose transactions follow each other it missed every short free moment: prune
   * waited 22 ms for each batch here, and the engine's per-job transactions slept behind the HTTP listeners'
   * commits (the engine lost 22–36% of its throughput under an API load, 12–17% spinning for 3 ms). Inside
   * a transaction it joins it, as `join` does (no savepoint).
   */
  txEager<T>(fn: () => T, spinMs: number): T {
    if (this.sqlite.inTransaction) return fn()
    const s = this.eager()
    const until = performance.now() + spinMs
    let locked = false
    s.busyOff.get()
    try {
      while (!locked) {
        try {
          s.begin.run()
          locked = true
        } catch (err) {
          if ((err as {code?: string}).code !== 'SQLITE_BUSY' || performance.now() >= until) break
          // A nap of 50 µs between looks leaves the CPU to the holder (often a thread on the same CPU).
          Atomics.wait(NAP, 0, 0, 0.05)
        }
      }
    } finally {
      s.busyOn.get()
    }
    if (!locked) s.begin.run()
    try {
      const result = fn()
      s.commit.run()
      return result
    } catch (err) {
      if (this.sqlite.inTransaction) s.rollback.run()
      throw err
    }
  }

  private eagerStatements: {
    begin: BetterSqlite3.Statement
    commit: BetterSqlite3.Statement
    rollback: BetterSqlite3.Statement
    busyOff: BetterSqlite3.Statement
    busyOn: BetterSqlite3.Statement
  } | null = null

  /** Prepared once: txEager runs for every job of the engine. */
  private eager() {
    if (!this.eagerStatements) {
      const busy = this.sqlite.pragma('busy_timeout', {simple: true}) as number
      this.eagerStatements = {
        begin: this.sqlite.prepare('BEGIN IMMEDIATE'),
        commit: this.sqlite.prepare('COMMIT'),
        rollback: this.sqlite.prepare('ROLLBACK'),
        busyOff: this.sqlite.prepare('PRAGMA busy_timeout = 0'),
        busyOn: this.sqlite.prepare(`PRAGMA busy_timeout = ${Number(busy)}`),
      }
    }
    return this.eagerStatements
  }

  /** A consistent read of several statements (one snapshot). */
  read<T>(fn: () => T): T {
    return this.runInTx.deferred(fn) as T
  }

  notify(_channel: string): void {}

  serialize(_key: string): void {}

  listen(_channel: string): void {}

  close(): void {
    if (this.sqlite.open) this.sqlite.close()
  }
}

/** The SQLite handle, when it is one (pragmas, checkpoints, the file's size); null on PostgreSQL. */
export function asSqlite(db: Db): SqliteDb | null {
  return db instanceof SqliteDb ? db : null
}

/** Statements compiled once per handle: `const stmts = perHandle((db) => ({...db.prepare(...)}))`. */
export function perHandle<T, D extends Db = Db>(compile: (db: D) => T): (db: D) => T {
  const cache = new WeakMap<D, T>()
  return (db) => {
    let s = cache.get(db)
    if (!s) {
      s = compile(db)
      cache.set(db, s)
    }
    return s
  }
}

/** Translate the store's errors (SQLite's, PostgreSQL's: pg-errors.ts) into ones that say what was wrong and what to do. */
export function translateSqliteError(err: unknown, path: string): unknown {
  if (err instanceof DuctileError) return err
  if (err instanceof PgError) return translatePgError(err, path)
  const e = err as {code?: string; message?: string}
  const code = e?.code ?? ''
  const msg = e?.message ?? String(err)
  if (code === 'SQLITE_NOTADB') {
    return new DuctileError('db_not_sqlite', `${path} is not a SQLite database (${msg})`, {
      hint: 'check --db / DUCTILE_DB points at a Ductile database; `ductile db init --db PATH` creates a new one',
      cause: err,
    })
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new DuctileError('db_corrupt', `${path} is corrupt: ${msg}`, {
      hint: 'run `ductile doctor` for details; restore from a backup (`ductile db backup` makes one)',
      cause: err,
    })
  }
  if (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code.startsWith('SQLITE_LOCKED')) {
    return new DuctileError('db_locked', `${path} is locked by another connection (${msg})`, {
      hint: 'another process holds a long write lock; retry in a moment, and check `ductile doctor` for a stuck process',
      cause: err,
    })
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new DuctileError('db_readonly', `${path} cannot be written: ${msg}`, {
      hint: 'check the permissions of the file and of its directory (SQLite needs to create -wal and -shm files beside it)',
      cause: err,
    })
  }
  if (code === 'SQLITE_FULL' || /disk is full|database or disk is full/i.test(msg)) {
    return new DuctileError('db_full', `${path}: the disk is full (${msg})`, {
      hint: 'free space on the volume, then run `ductile prune` and `ductile vacuum`; nothing was written by the failed step',
      cause: err,
    })
  }
  if (code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_IOERR')) {
    return new DuctileError('db_error', `cannot use ${path}: ${msg}`, {
      hint: 'check that the file and its directory exist and are readable and writable by this user',
      cause: err,
    })
  }
  return err
}

export function busyTimeoutFromEnv(): number {
  const v = Number(process.env.DUCTILE_BUSY_TIMEOUT_MS)
  return Number.isFinite(v) && v >= 0 && process.env.DUCTILE_BUSY_TIMEOUT_MS !== '' && process.env.DUCTILE_BUSY_TIMEOUT_MS !== undefined
    ? v
    : DEFAULT_BUSY_TIMEOUT_MS
}

/** Files Ductile creates are private (0600 file, 0700 directory). */
export function restrictPermissions(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) {
    const p = path + suffix
    try {
      if (existsSync(p) && (statSync(p).mode & 0o077) !== 0) chmodSync(p, 0o600)
    } catch {
      // Not ours to change (another owner): leave it.
    }
  }
}

/**
 * Open a database.
 * - `read`: read-only, never creates or changes the file; never blocks a writer (WAL readers don't).
 * - `write`: the file must exist; WAL, synchronous=NORMAL, busy_timeout, foreign_keys, journal_size_limit.
 * - `create`: like write, creating the file (and its directory, 0700) when missing.
 */
export function openDb(path: string, opts: OpenOptions): SqliteDb {
  const abs = resolve(path)
  const busy = opts.busyTimeoutMs ?? busyTimeoutFromEnv()
  if (opts.mode !== 'create' && !existsSync(abs)) {
    throw new DuctileError('db_missing', `database ${abs} does not exist`, {
      hint: 'pass --db PATH (or set DUCTILE_DB) to an existing database, or create one with `ductile db init --db PATH`',
    })
  }
  if (existsSync(abs) && statSync(abs).isDirectory()) {
    throw new DuctileError('db_error', `${abs} is a directory, not a database file`, {hint: 'pass the path of the .db file'})
  }
  if (opts.mode === 'create') {
    const dir = dirname(abs)
    if (!existsSync(dir)) mkdirSync(dir, {recursive: true, mode: 0o700})
  }
  let sqlite: BetterSqlite3.Database | undefined
  try {
    sqlite = new BetterSqlite3(abs, {readonly: opts.mode === 'read', fileMustExist: opts.mode !== 'create', timeout: busy})
    applyConnectionPragmas(sqlite, opts.mode, busy)
    // Touch the header so "not a database" surfaces here, not in the middle of a command.
    sqlite.pragma('schema_version', {simple: true})
    const db = new SqliteDb(abs, sqlite, opts.mode === 'read')
    opts.check?.(db)
    if (opts.mode !== 'read') {
      applyWriterPragmas(sqlite)
      restrictPermissions(abs)
    }
    return db
  } catch (err) {
    sqlite?.close()
    if (opts.mode === 'read') {
      const snapshot = readOnlySnapshot(abs, err)
      if (snapshot) return snapshot
    }
    throw translateSqliteError(err, abs)
  }
}

/**
 * A WAL database in a directory this user cannot write cannot be opened in place: SQLite must create the
 * -shm file beside it. When there is no WAL content (no -wal file, or an empty one) nothing can be writing
 * to it either (a writer would need that directory), so the file alone is the whole database: read it into
 * memory and serve reads from that snapshot. A WAL with content is refused: reading the file without it
 * would show old data.
 */
function readOnlySnapshot(abs: string, err: unknown): SqliteDb | null {
  const code = (err as {code?: string}).code ?? ''
  if (code !== 'SQLITE_READONLY_DIRECTORY' && code !== 'SQLITE_CANTOPEN' && !code.startsWith('SQLITE_READONLY')) return null
  const wal = `${abs}-wal`
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new DuctileError('db_readonly', `${abs} cannot be read here: its directory is not writable and its WAL (${wal}) holds changes not yet in the file`, {
      hint: 'make the directory writable for this user (SQLite creates a -shm file beside the database), or checkpoint it as its owner (`ductile vacuum`)',
      cause: err,
    })
  }
  let buf: Buffer
  try {
    buf = readFileSync(abs)
  } catch {
    return null // not readable either: SQLite's own error says so
  }
  // An in-memory copy is a rollback-journal database: bytes 18 and 19 say WAL (2) on disk, 1 here.
  if (buf.length >= 20) buf[18] = buf[19] = 1
  const sqlite = new BetterSqlite3(buf, {readonly: true})
  sqlite.pragma('query_only = ON')
  return new SqliteDb(abs, sqlite, true)
}
