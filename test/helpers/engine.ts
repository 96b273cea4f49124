import {type ChildProcess, spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadConfig} from '../../src/config/load.js'
import {discoverPlugins} from '../../src/plugins/discover.js'
import {Engine, type EngineHooks} from '../../src/engine/engine.js'
import {engineHooks} from '../../src/engine/hooks.js'
import {Logger} from '../../src/engine/log.js'
import {enqueueJob} from '../../src/queries/queue.js'
import {type Db, openDb} from '../../src/schema/db.js'
import {initSchema} from '../../src/schema/migrations.js'
import {formatTs} from '../../src/schema/time.js'
import {BIN, ROOT} from './cli.js'
import {tempDir} from './db.js'

export const FIXTURE_PLUGINS = fileURLToPath(new URL('../fixtures/plugins', import.meta.url))

export interface TestEnv {
  dir: string
  configPath: string
  dbPath: string
  /** A second connection for assertions and for enqueueing like another process would. */
  db: Db
  logs: string[]
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
  const defaults = ['  name: test-engine\n', '  max_workers: 2\n', '  tick_interval: 1h\n'].filter((l) => !extra.includes(l.split(':')[0] + ':'))
  writeFileSync(configPath, `service:\n${defaults.join('')}${extra}state:\n  path: ./ductile.db\nplugin_roots:\n  - ${FIXTURE_PLUGINS}\n${yaml}`)
  const db = openDb(dbPath, {mode: 'create'})
  initSchema(db)
  return {dir, configPath, dbPath, db, logs: []}
}

export function startEngine(env: TestEnv, opts: {hooks?: EngineHooks; killGraceMs?: number} = {}): Promise<Engine> {
  const config = loadConfig(env.configPath)
  const registry = discoverPlugins(config)
  const engine = new Engine({
    config,
    registry,
    dbPath: env.dbPath,
    version: 'test',
    logger: new Logger('text', 'debug', (l) => env.logs.push(l)),
    pollIntervalMs: 50,
    killGraceMs: opts.killGraceMs ?? 300,
    hooks: opts.hooks ?? engineHooks(config, registry),
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
    dedupeSince: formatTs(new Date(Date.now() - 86_400_000)),
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
  return db.sqlite.prepare('SELECT * FROM job_queue WHERE id = ?').get(id) as Record<string, any>
}

/** Wait for a job to reach a terminal status. */
export function waitTerminal(env: TestEnv, id: string, timeoutMs = 15_000) {
  return waitFor(`job ${id} to finish`, () => {
    const j = jobRow(env.db, id)
    return j && !['queued', 'running'].includes(j.status) ? j : null
  }, timeoutMs)
}

export function rows(db: Db, sql: string, ...params: unknown[]) {
  return db.sqlite.prepare(sql).all(...params) as Record<string, any>[]
}

export interface EngineProcess {
  child: ChildProcess
  /** Everything the engine logged on stderr so far. */
  err: () => string
  exited: Promise<number | null>
}

/** The real `bin/run.js engine start` as a child process, the way systemd would run it. */
export function spawnEngine(configPath: string, extra: string[] = []): EngineProcess {
  const child = spawn(process.execPath, [BIN, 'engine', 'start', '--config', configPath, ...extra], {cwd: ROOT, env: {...process.env, NO_COLOR: '1', NODE_ENV: ''}, stdio: ['ignore', 'ignore', 'pipe']})
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (d) => (err += d))
  return {child, err: () => err, exited: new Promise((r) => child.on('exit', (code) => r(code)))}
}

/** Spawn the engine and wait for its "engine started" line. */
export async function startedEngine(configPath: string, extra: string[] = []): Promise<EngineProcess> {
  const e = spawnEngine(configPath, extra)
  await waitFor('the engine to start', () => e.err().includes('engine started') || e.child.exitCode !== null, 20_000)
  if (!e.err().includes('engine started')) throw new Error(`the engine did not start:\n${e.err()}`)
  return e
}
