import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadConfig} from '../../src/config/load.js'
import {discoverPlugins} from '../../src/plugins/discover.js'
import {Engine} from '../../src/engine/engine.js'
import {Logger} from '../../src/engine/log.js'
import {enqueueJob} from '../../src/queries/queue.js'
import type {Db} from '../../src/schema/db.js'
import {formatTs} from '../../src/schema/time.js'
import {BIN, ROOT} from './cli.js'
import {tempDir} from './db.js'
import {freshStore} from './store.js'

export const FIXTURE_PLUGINS = fileURLToPath(new URL('../fixtures/plugins', import.meta.url))

export interface TestEnv {
  dir: string
  configPath: string
  dbPath: string
  /** A second connection for assertions and for enqueueing like another process would. */
  db: Db
  logs: string[]
  /** The config's `state:` block naming this database (a test that writes its own config uses it). */
  state: string
}

/**
 * A temp directory with config.yaml (plugin_roots = the fixture plugins) and an initialised database.
 * `yaml` is appended to the config (plugins, service overrides, pipelines).
 */
export function testEnv(yaml = '', opts: {service?: string} = {}): TestEnv {
  const dir = tempDir('ductile-engine-')
  const dbPath = join(dir, 'ductile.db')
  const configPath = join(dir, 'config.yaml')
  const extra = opts.service ?? ''
  const defaults = ['  name: test-engine\n', '  max_workers: 2\n', '  tick_interval: 1h\n'].filter((l) => !extra.includes(`${l.split(':')[0]}:`))
  writeFileSync(configPath, `service:\n${defaults.join('')}${extra}state:\n  path: ./ductile.db\nplugin_roots:\n  - ${FIXTURE_PLUGINS}\n${yaml}`)
  const {db, path} = freshStore(dbPath)
  const state = path === dbPath ? 'state:\n  path: ./ductile.db\n' : `state:\n  url: ${path}\n`
  if (path !== dbPath) writeFileSync(configPath, readFileSync(configPath, 'utf8').replace('state:\n  path: ./ductile.db\n', state))
  return {dir, configPath, dbPath: path, db, logs: [], state}
}

export function startEngine(
  env: TestEnv,
  opts: {killGraceMs?: number; pollIntervalMs?: number; clock?: () => Date; onLost?: (why: string) => void} = {},
): Promise<Engine> {
  const config = loadConfig(env.configPath)
  const registry = discoverPlugins(config)
  const engine = new Engine({
    config,
    registry,
    dbPath: env.dbPath,
    version: 'test',
    logger: new Logger('text', 'debug', (l) => env.logs.push(l)),
    pollIntervalMs: opts.pollIntervalMs ?? 50,
    killGraceMs: opts.killGraceMs ?? 300,
    clock: opts.clock,
    onLost: opts.onLost,
  })
  return engine.start().then(() => engine)
}

export function enqueue(
  env: TestEnv,
  plugin: string,
  payload: unknown = {},
  o: {command?: string; maxAttempts?: number; dedupeKey?: string; submittedBy?: string} = {},
): string {
  const now = formatTs(new Date())
  const r = enqueueJob(env.db, {
    plugin,
    command: o.command ?? 'poll',
    payload,
    submittedBy: o.submittedBy ?? 'cli',
    maxAttempts: o.maxAttempts ?? 1,
    dedupeKey: o.dedupeKey,
    dedupeTtlMs: 86_400_000,
    now,
  })
  if (r.status !== 'enqueued') throw new Error(`not enqueued: ${r.status}`)
  return r.job.id
}

/** Wait until a condition on the database holds (polling), or fail with what was last seen. */
export async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    const v = fn()
    if (v) return v
    last = v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export function jobRow(db: Db, id: string) {
  // biome-ignore lint/suspicious/noExplicitAny: a row read loosely: a missing column fails the assertion
  return db.query('SELECT * FROM job_queue WHERE id = ?', [id])[0] as Record<string, any>
}

/** Wait for a job to reach a terminal status; when it does not, say what the queue and the engine were doing. */
export async function waitTerminal(env: TestEnv, id: string, timeoutMs = 15_000) {
  try {
    return await waitFor(
      `job ${id} to finish`,
      () => {
        const j = jobRow(env.db, id)
        return j && !['queued', 'running'].includes(j.status) ? j : null
      },
      timeoutMs,
    )
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${describeEnv(env)}`)
  }
}

/** The queue by plugin and status, the engines, and the engine's last log lines: for a failed wait's message. */
export function describeEnv(env: TestEnv): string {
  const queue = rows(env.db, 'SELECT plugin, command, status, COUNT(*) AS n FROM job_queue GROUP BY plugin, command, status ORDER BY 1, 2, 3')
  const engines = rows(env.db, 'SELECT id, pid, heartbeat_at, stopped_at, stop_reason FROM engines ORDER BY started_at')
  return [
    `queue: ${JSON.stringify(queue)}`,
    `engines: ${JSON.stringify(engines)}`,
    `now: ${new Date().toISOString()}`,
    'engine log (last 40 lines):',
    ...env.logs.slice(-40),
  ].join('\n')
}

export function rows(db: Db, sql: string, ...params: unknown[]) {
  // biome-ignore lint/suspicious/noExplicitAny: rows read loosely, as above
  return db.query(sql, params) as Record<string, any>[]
}

/** The tables an explanation may cite (`table#id`), and their keys. */
const CITABLE: Record<string, string> = {
  job_queue: 'id',
  job_transitions: 'id',
  job_attempts: 'id',
  job_log: 'id',
  event_context: 'id',
  config_snapshots: 'id',
  dedupe_hits: 'id',
  schedule_decisions: 'id',
  circuit_breaker_transitions: 'id',
}

/** Every row an explanation (`explain … --json`) cites exists in the database. */
export function assertCitedRowsExist(db: Db, events: {rows: string[]}[]): void {
  const cited = events.flatMap((e) => e.rows)
  assert.ok(cited.length > 0, 'it cites rows')
  for (const ref of cited) {
    const [table, id] = ref.split('#') as [string, string]
    const key = CITABLE[table]
    assert.ok(key, `cites a table it may: ${ref}`)
    assert.equal(rows(db, `SELECT 1 AS ok FROM ${table} WHERE ${key} = ?`, /^\d+$/.test(id) ? Number(id) : id).length, 1, `${ref} exists`)
  }
}

export interface EngineProcess {
  child: ChildProcess
  /** Everything the engine logged on stderr so far. */
  err: () => string
  exited: Promise<number | null>
}

/** The real `bin/run.js engine start` as a child process, the way systemd would run it. */
export interface SpawnEngineOptions {
  env?: Record<string, string>
  /** Its own process group (as a shell or systemd would start it), so a test can signal the whole group. */
  detached?: boolean
}

export function spawnEngine(configPath: string, extra: string[] = [], opts: SpawnEngineOptions = {}): EngineProcess {
  const child = spawn(process.execPath, [BIN, 'engine', 'start', '--config', configPath, ...extra], {
    cwd: ROOT,
    env: {...process.env, NO_COLOR: '1', NODE_ENV: '', ...opts.env},
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: opts.detached,
  })
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (d) => (err += d))
  return {child, err: () => err, exited: new Promise((r) => child.on('exit', (code) => r(code)))}
}

/** Spawn the engine and wait for its "engine started" line. */
export async function startedEngine(configPath: string, extra: string[] = [], opts: SpawnEngineOptions = {}): Promise<EngineProcess> {
  const e = spawnEngine(configPath, extra, opts)
  await waitFor('the engine to start', () => e.err().includes('engine started') || e.child.exitCode !== null, 20_000)
  if (!e.err().includes('engine started')) throw new Error(`the engine did not start:\n${e.err()}`)
  return e
}

/**
 * The rows every finished job must have, whatever its outcome: a terminal job_queue row; transitions that
 * start at NULL→queued, chain from each other and end at the job's status; one job_attempts row per claim;
 * one job_log row per attempt (`<id>-<n>`), the last with the job's status; plugin_facts rows only for a
 * success, each mirrored in plugin_state. Returns the rows for further assertions.
 */
export function assertJobRows(env: TestEnv, id: string) {
  const job = jobRow(env.db, id)
  if (!job) throw new Error(`no job ${id}`)
  if (['queued', 'running'].includes(job.status)) throw new Error(`job ${id} is not finished (${job.status})`)
  const transitions = rows(env.db, 'SELECT from_status, to_status, reason FROM job_transitions WHERE job_id = ? ORDER BY id', id)
  const attempts = rows(env.db, 'SELECT attempt, plugin_pid FROM job_attempts WHERE job_id = ? ORDER BY attempt', id)
  const logs = rows(env.db, 'SELECT * FROM job_log WHERE job_id = ? ORDER BY attempt', id)
  const facts = rows(env.db, 'SELECT * FROM plugin_facts WHERE job_id = ? ORDER BY seq', id)
  const fail = (m: string) => {
    throw new Error(`job ${id}: ${m}`)
  }
  if (transitions[0]?.from_status !== null || transitions[0]?.to_status !== 'queued') fail('transitions do not start with NULL→queued')
  for (let i = 1; i < transitions.length; i++) if (transitions[i].from_status !== transitions[i - 1].to_status) fail(`transition ${i} does not chain`)
  if (transitions[transitions.length - 1].to_status !== job.status)
    fail(`last transition ${transitions[transitions.length - 1].to_status} ≠ status ${job.status}`)
  const claims = transitions.filter((t) => t.from_status === 'queued' && t.to_status === 'running').length
  if (attempts.length !== claims) fail(`${attempts.length} attempts for ${claims} claims`)
  // A job cancelled before it ran has neither attempts nor log rows.
  if (logs.length !== attempts.length) fail(`${logs.length} job_log rows for ${attempts.length} attempts`)
  logs.forEach((l, i) => {
    if (l.id !== `${id}-${l.attempt}`) fail(`job_log id ${l.id}`)
    if (attempts.length && l.attempt !== attempts[i].attempt) fail(`job_log attempt ${l.attempt} ≠ attempt ${attempts[i].attempt}`)
  })
  if (logs.length && logs[logs.length - 1].status !== job.status) fail(`last job_log status ${logs[logs.length - 1].status} ≠ ${job.status}`)
  if (job.status !== 'succeeded' && facts.length) fail('facts from a job that did not succeed')
  for (const f of facts) {
    const state = rows(env.db, 'SELECT state FROM plugin_state WHERE plugin_name = ?', f.plugin_name)[0]
    if (!state) fail(`no plugin_state for ${f.plugin_name}`)
  }
  return {job, transitions, attempts, logs, facts}
}
