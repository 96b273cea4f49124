import {type Compilable, DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, sql} from 'kysely'
import {MessageChannel, type MessagePort, Worker, receiveMessageOnPort} from 'node:worker_threads'

import {DuctileError} from '../errors.js'
import {ownFile} from '../assets.js'
import {displayUrl} from './pg-url.js'
import {type Db, type Param, type Prepared, type Row, type RunResult, bindNamed, compileNamed} from './db.js'
import type {Dialect} from './dialect.js'
import {PgError} from './pg-errors.js'
import type {Database} from './types.js'

/**
 * The PostgreSQL store: the same Db as SQLite's (db.ts), so one set of query modules, one engine and one CLI
 * serve both. Queries are compiled by Kysely's PostgreSQL dialect (its adapter and query compiler) and run by
 * `pg` (node-postgres).
 *
 * Synchronous, as on SQLite: a transaction never spans an `await`, the engine's state machine stays the code
 * it is, and no query module has two spellings. `pg` is asynchronous, so the connection lives on a thread of
 * its own (pg-thread.js) and a call blocks in Atomics.wait until the thread has the answer (about 50 µs
 * more than pg's own round trip here). LISTEN runs on a second, dedicated connection of that thread; its
 * notifications arrive as ordinary messages (they wake the engine).
 *
 * Everything PostgreSQL-only lives here and in pg-schema.ts (DDL, introspection, settings).
 */

/** Kysely used only as a query builder, with PostgreSQL's compiler ($1 placeholders, RETURNING, …). */
export const pgBuilder = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
})

/** The PostgreSQL side of the query modules' differences (dialect.ts); the functions are created by pg-schema.ts. */
export const pgDialect: Dialect = {
  durationSecExpr: () => sql<number | null>`(ductile_sec(completed_at) - ductile_sec(started_at))`,
  durationDaysExpr: () => sql<number | null>`((ductile_ms(completed_at) - ductile_ms(started_at)) / 86400000.0)`,
  durationMsExpr: () => sql<number | null>`CAST(ROUND(ductile_ms(completed_at) - ductile_ms(started_at)) AS bigint)`,
  withIndex: (query) => query,
  rowId: 'ctid',
}

export interface BridgeData {
  url: string
  applicationName: string
  /** Statements run once connected (session settings). */
  setup: string[]
  port: MessagePort
  flag: SharedArrayBuffer
}

export type BridgeRequest =
  | {op: 'connect'}
  | {op: 'listen'; channel: string}
  /** `fresh`: no transaction is under way on the connection (a lost one may be replaced first). */
  | {op: 'exec'; text: string; fresh: boolean}
  | {op: 'query'; text: string; values: unknown[]; prepare: boolean; fresh: boolean}
  /** Statements sent as one (a simple query, values inlined as literals): the answer is the last one's. */
  | {op: 'batch'; items: {text: string; values: unknown[]}[]; fresh: boolean}
  | {op: 'close'}

export type BridgeAnswer = {rows: Record<string, unknown>[]; rowCount: number} | {error: {message: string; code: string | null; detail: string | null}}

/** How long a call waits for the connection's thread before it calls the connection lost. */
const ANSWER_TIMEOUT_MS = 15 * 60_000

/**
 * Post a request to a thread that answers as pg-thread.js does (post the answer, set the flag, notify), and
 * block until its answer. A wake is not an answer: the thread's notify for the previous answer can land after
 * this call cleared the flag (the caller saw the flag set, read that answer and came back before the thread
 * got to its notify), so the flag is what says the answer is there. Taking such a wake for an answer read an
 * empty port, and from then on every call read the answer of the call before it.
 */
export function callThread(port: MessagePort, flag: Int32Array, req: unknown, timeoutMs: number): unknown {
  Atomics.store(flag, 0, 0)
  port.postMessage(req)
  const deadline = performance.now() + timeoutMs
  while (Atomics.load(flag, 0) === 0) {
    const left = deadline - performance.now()
    if (left <= 0 || Atomics.wait(flag, 0, 0, left) === 'timed-out') {
      throw new PgError(`no answer from the connection's thread in ${Math.round(timeoutMs / 1000)} s`, '08006')
    }
  }
  const m = receiveMessageOnPort(port)?.message
  if (!m) throw new PgError("the connection's thread answered nothing", '08006')
  return m
}

/** One connection to PostgreSQL, called synchronously (see the file's comment). */
export class PgBridge {
  private readonly worker: Worker
  private readonly port: MessagePort
  private readonly flag: Int32Array
  private closed = false

  constructor(url: string, o: {applicationName: string; setup: string[]; onNotify?: (channel: string, payload: string) => void}) {
    const {port1, port2} = new MessageChannel()
    const flag = new SharedArrayBuffer(4)
    const data: BridgeData = {url, applicationName: o.applicationName, setup: o.setup, port: port2, flag}
    this.worker = new Worker(ownFile('schema/pg-thread.js'), {workerData: data, transferList: [port2], execArgv: []})
    this.worker.on('message', (m: {type: string; channel?: string; payload?: string}) => {
      if (m.type === 'notify') o.onNotify?.(m.channel ?? '', m.payload ?? '')
    })
    // The thread never keeps the process alive: a command ends when its work does, closed or not.
    this.worker.unref()
    this.port = port1
    this.flag = new Int32Array(flag)
    try {
      this.call({op: 'connect'})
    } catch (err) {
      this.close()
      throw err
    }
  }

  call(req: BridgeRequest): {rows: Record<string, unknown>[]; rowCount: number} {
    if (this.closed) throw new PgError('the connection is closed', '08003')
    const m = callThread(this.port, this.flag, req, ANSWER_TIMEOUT_MS) as BridgeAnswer
    if ('error' in m) throw new PgError(m.error.message, m.error.code, m.error.detail)
    return m
  }

  close(): void {
    if (this.closed) return
    try {
      this.call({op: 'close'})
    } catch {
      // ending anyway
    }
    this.closed = true
    this.port.close()
    void this.worker.terminate()
  }
}

/** `?` placeholders (outside quoted text) as PostgreSQL's `$1, $2, …`. */
export function numberPlaceholders(text: string): string {
  let n = 0
  let out = ''
  let quote: string | null = null
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null
      out += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      out += ch
    } else if (ch === '?') {
      out += `$${++n}`
    } else {
      out += ch
    }
  }
  return out
}

/**
 * Parameter values as pg sends them. PostgreSQL's text cannot hold NUL, which SQLite's can: a NUL in a
 * plugin's output (stderr, an error) is stored as U+FFFD, the replacement character, rather than losing the
 * whole attempt's row. (Payloads are JSON: a NUL there is already the six characters \u0000.)
 */
const values = (params: readonly unknown[]): unknown[] =>
  params.map((v) =>
    v === undefined
      ? null
      : typeof v === 'string'
        ? v.includes('\u0000')
          ? v.replaceAll('\u0000', '\ufffd')
          : v
        : typeof v === 'boolean'
          ? v
            ? 1
            : 0
          : typeof v === 'bigint'
            ? v.toString()
            : v,
  )

export class PgDb implements Db {
  readonly kind = 'postgres' as const
  readonly k = pgBuilder
  readonly dialect = pgDialect
  readonly path: string
  readonly readonly: boolean
  readonly bridge: PgBridge
  onQuery?: (sql: string, parameters: readonly unknown[]) => void
  private depth = 0
  private savepoints = 0
  /**
   * Statements of the open transaction not sent yet (its BEGIN, writes whose result nobody reads): they go with
   * the next statement that needs an answer, in one round trip. A transaction that writes a job's end (its
   * finish, transition, job_log row, fact and state) and claims the next job is four round trips, not eleven.
   */
  private pending: {text: string; values: unknown[]}[] = []

  constructor(bridge: PgBridge, path: string, readonly: boolean) {
    this.bridge = bridge
    this.path = path
    this.readonly = readonly
  }

  get inTransaction(): boolean {
    return this.depth > 0
  }

  private q(text: string, params: readonly unknown[], prepare = true) {
    this.onQuery?.(text, params)
    if (this.pending.length === 0) return this.bridge.call({op: 'query', text, values: values(params), prepare, fresh: this.depth === 0})
    const items = [...this.pending, {text, values: values(params)}]
    this.pending = []
    // A batch that opens the transaction may go to a new connection when the old one was lost.
    return this.bridge.call({op: 'batch', items, fresh: this.depth === 0 || /^BEGIN\b/.test(items[0]?.text ?? '')})
  }

  /** Send with the next statement that needs an answer (inside a transaction), or now. */
  private later(text: string, params: readonly unknown[]): void {
    if (this.depth === 0) {
      this.q(text, params)
      return
    }
    this.onQuery?.(text, params)
    this.pending.push({text, values: values(params)})
  }

  all<Q extends Compilable<unknown>>(query: Q): Row<Q>[] {
    const c = query.compile()
    return this.q(c.sql, c.parameters).rows as Row<Q>[]
  }

  get<Q extends Compilable<unknown>>(query: Q): Row<Q> | undefined {
    return this.all(query)[0]
  }

  run(query: Compilable<unknown>): RunResult {
    const c = query.compile()
    return {changes: this.q(c.sql, c.parameters).rowCount}
  }

  prepare<P extends object, Q extends Compilable<unknown>>(build: (p: Param<P>) => Q): Prepared<P, Row<Q>> {
    let compiled: ReturnType<typeof compileNamed> | null = null
    const exec = (v: P) => {
      compiled ??= compileNamed(build)
      return this.q(compiled.sql, bindNamed(compiled.names, v))
    }
    return {
      all: (v) => exec(v).rows as Row<Q>[],
      get: (v) => exec(v).rows[0] as Row<Q> | undefined,
      run: (v) => ({changes: exec(v).rowCount}),
      write: (v) => {
        compiled ??= compileNamed(build)
        this.later(compiled.sql, bindNamed(compiled.names, v))
      },
    }
  }

  query(sqlText: string, params: readonly unknown[] = []): Record<string, unknown>[] {
    return this.q(numberPlaceholders(sqlText), params).rows
  }

  exec(sqlText: string): void {
    this.onQuery?.(sqlText, [])
    if (this.pending.length) this.q(sqlText, [], false)
    else this.bridge.call({op: 'exec', text: sqlText, fresh: this.depth === 0})
  }

  /** A transaction (a savepoint inside one): READ COMMITTED, as PostgreSQL's default; row locks where it matters. */
  tx<T>(fn: () => T): T {
    if (this.depth > 0) return this.undoUnless(fn, () => true)
    return this.transaction(this.readonly ? 'BEGIN READ ONLY' : 'BEGIN', fn)
  }

  private transaction<T>(begin: string, fn: () => T): T {
    this.depth++
    // The BEGIN goes with the transaction's first statement that needs an answer.
    this.pending.push({text: begin, values: []})
    try {
      const result = fn()
      this.exec('COMMIT')
      return result
    } catch (err) {
      // Nothing of it reached the server (the BEGIN still waits): nothing to roll back.
      const unsent = this.pending[0]?.text === begin
      this.pending = []
      if (!unsent) {
        try {
          this.exec('ROLLBACK')
        } catch {
          // the connection is gone: the server rolled back
        }
      }
      throw err
    } finally {
      this.depth--
    }
  }

  /** No lock to spin for on PostgreSQL: rows are locked as they are written. */
  txEager<T>(fn: () => T, _spinMs: number): T {
    return this.join(fn)
  }

  undoUnless<T>(fn: () => T, keep: (result: T) => boolean): T {
    if (this.depth === 0) return this.tx(() => this.undoUnless(fn, keep))
    const name = `ductile_undo_${++this.savepoints}`
    this.exec(`SAVEPOINT ${name}`)
    let result: T
    try {
      result = fn()
    } catch (err) {
      this.exec(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`)
      throw err
    } finally {
      this.savepoints--
    }
    this.exec(keep(result) ? `RELEASE SAVEPOINT ${name}` : `ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`)
    return result
  }

  join<T>(fn: () => T): T {
    return this.depth > 0 ? fn() : this.tx(fn)
  }

  /** A consistent read of several statements: one snapshot (REPEATABLE READ, read only). */
  read<T>(fn: () => T): T {
    return this.depth > 0 ? fn() : this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', fn)
  }

  serialize(key: string): void {
    // Taken when the next statement is sent, before it runs: the same order as a call of its own.
    this.later('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key])
  }

  notify(channel: string): void {
    this.later(`NOTIFY ${channel}`, [])
  }

  /** LISTEN on a dedicated connection; `onNotify` (given at open) hears each NOTIFY after its commit. */
  listen(channel: string): void {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`)
    this.bridge.call({op: 'listen', channel})
  }

  close(): void {
    this.bridge.close()
  }
}

export interface PgOpenOptions {
  mode: 'read' | 'write' | 'create'
  /** How long a statement waits for a lock before it fails (SQLite's busy_timeout; PostgreSQL's lock_timeout). */
  busyTimeoutMs: number
  applicationName?: string
  onNotify?: (channel: string, payload: string) => void
  check?: (db: Db) => void
}

/** Connect. Read mode sets every transaction read-only on the server: a read command cannot write, whatever it runs. */
export function openPg(url: string, o: PgOpenOptions): PgDb {
  const where = displayUrl(url)
  const setup = [
    "SET TIME ZONE 'UTC'",
    // busy_timeout 0 (fail at once when locked) is lock_timeout 1 ms: PostgreSQL's 0 means wait forever.
    `SET lock_timeout = ${Math.max(1, Math.round(o.busyTimeoutMs))}`,
    // Our schema's objects are unqualified: they live in the connection's search_path (public by default).
    ...(o.mode === 'read' ? ['SET default_transaction_read_only = on'] : []),
  ]
  let bridge: PgBridge
  try {
    bridge = new PgBridge(url, {applicationName: o.applicationName ?? `ductile ${o.mode}`, setup, onNotify: o.onNotify})
  } catch (err) {
    if (err instanceof PgError || err instanceof DuctileError) throw err
    throw new DuctileError('db_error', `cannot connect to ${where}: ${(err as Error).message}`, {hint: 'check the URL', cause: err})
  }
  const db = new PgDb(bridge, where, o.mode === 'read')
  try {
    o.check?.(db)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}
