/**
 * HTTP ingress (issue 16), in one run against the same machine state:
 * (a) `POST /plugin/echo-sh/poll` from 32 keep-alive connections (a client process of its own) while the
 *     engine drains a backlog of the trivial sh plugin: accepted jobs/s (goal >= 3,000), p99 latency
 *     (goal <= 25 ms), and every accepted job in the database (0 lost);
 * (b) the engine's own completions per second during that load against the same engine unloaded, measured in
 *     alternating windows (goal: drop <= 15%);
 * (c) the accepted rate as a ratio to the same enqueue in process (engine/ingress.ts, one transaction per
 *     job: what `jobs enqueue` does without its process start).
 * Knobs, to learn where the time goes: BENCH_HTTP_RATE (requests offered per second in all; default as fast
 * as answered), BENCH_HTTP_CLIENT_CPUS (run the client under taskset, e.g. 1: off the engine's CPU, as a
 * client on another host would be), BENCH_HTTP_SECONDS (each load run, default 6), BENCH_HTTP_THREADS=1
 * (print the engine's CPU ticks per thread for each window).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {loadConfig} from '../src/config/load.js'
import {enqueueCommand} from '../src/engine/ingress.js'
import {discoverPlugins} from '../src/plugins/discover.js'
import {openDb} from '../src/schema/db.js'
import {initSchema} from '../src/schema/migrations.js'
import type {Section} from './run.js'
import {enqueueMany, line} from './util.js'

const TOKEN = 'bench-token-0123456789abcdef'
const CONNECTIONS = 32
const LOAD_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 6)
const WINDOW_MS = 4000
const BACKLOG = 40_000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function inProcessRate(configPath: string, dbPath: string, n: number): number {
  const config = loadConfig(configPath, {env: {...process.env, BENCH_TOKEN: TOKEN}})
  const registry = discoverPlugins(config)
  const db = openDb(dbPath, {mode: 'write'})
  try {
    const t0 = performance.now()
    for (let i = 0; i < n; i++)
      enqueueCommand(
        {db, registry, service: config.service, snapshotId: null, now: new Date()},
        {plugin: 'echo-sh', command: 'poll', payload: {}, origin: 'cli'},
      )
    return n / ((performance.now() - t0) / 1000)
  } finally {
    db.close()
  }
}

const section: Section = async ({root}) => {
  const dir = mkdtempSync(join(tmpdir(), 'ductile-bench-http-'))
  let engine: ChildProcess | null = null
  try {
    const configPath = join(dir, 'config.yaml')
    writeFileSync(
      configPath,
      `service:\n  tick_interval: 1h\n${process.env.BENCH_HTTP_SERVICE ?? ''}state:\n  path: ./d.db\nplugin_roots:\n  - ${join(root, 'test/fixtures/plugins')}\n` +
        `api:\n  enabled: true\n  listen: 127.0.0.1:0\n  rate_limit: false\n  auth:\n    tokens:\n      - {token: \${BENCH_TOKEN}, scopes: ["*"]}\n`,
    )
    const dbPath = join(dir, 'd.db')
    const db = openDb(dbPath, {mode: 'create'})
    initSchema(db)
    // A backlog the engine cannot finish within the bench: it is busy in every window.
    enqueueMany(db, 'echo-sh', BACKLOG)
    const done = db.sqlite.prepare(`SELECT COUNT(*) FROM job_queue WHERE status = 'succeeded'`).pluck()
    let err = ''
    engine = spawn(process.execPath, [join(root, 'bin/run.js'), 'engine', 'start', '--config', configPath, '--log-level', 'info'], {
      env: {...process.env, BENCH_TOKEN: TOKEN},
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    engine.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 100_000) err += d
    })
    let address: string | undefined
    for (let i = 0; i < 200 && !address; i++) {
      address = /api listening address=(\S+)/.exec(err)?.[1]
      if (!address) await sleep(50)
    }
    if (!address) throw new Error(`http bench: the engine did not listen:\n${err}`)
    await sleep(1000)
    const threads = () => {
      const out = new Map<string, number>()
      const pid = engine?.pid
      if (!pid) return out
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        try {
          const name = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim()
          const f = (readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1] ?? '').split(' ')
          out.set(`${t}:${name}`, Number(f[11]) + Number(f[12]))
        } catch {
          // the thread ended
        }
      }
      return out
    }
    const window = async () => {
      const c0 = done.get() as number
      const t0 = performance.now()
      const cpu0 = threads()
      await sleep(WINDOW_MS)
      if (process.env.BENCH_HTTP_THREADS) {
        const cpu1 = threads()
        console.log(
          [...cpu1]
            .map(([k, v]) => `${k}=${v - (cpu0.get(k) ?? 0)}`)
            .filter((x) => !x.endsWith('=0'))
            .join(' '),
        )
      }
      return ((done.get() as number) - c0) / ((performance.now() - t0) / 1000)
    }
    // Unloaded and loaded windows alternate (the machine drifts): idle, load, idle, load, idle.
    const idle: number[] = [await window()]
    const loaded: number[] = []
    const runs: {accepted: number; errors: number; seconds: number; p50: number; p99: number; max: number}[] = []
    const ids: string[] = []
    for (let round = 0; round < 2; round++) {
      const idsFile = join(dir, `ids-${round}.txt`)
      const clientCmd = [
        join(root, 'bench/http-client.js'),
        `http://${address}/plugin/echo-sh/poll`,
        TOKEN,
        String(CONNECTIONS),
        String(LOAD_SECONDS),
        idsFile,
        process.env.BENCH_HTTP_RATE ?? '0',
      ]
      const pin = process.env.BENCH_HTTP_CLIENT_CPUS
      const client = pin
        ? spawn('taskset', ['-c', pin, process.execPath, ...clientCmd], {stdio: ['ignore', 'pipe', 'inherit']})
        : spawn(process.execPath, clientCmd, {stdio: ['ignore', 'pipe', 'inherit']})
      let out = ''
      client.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
      const clientDone = new Promise((res) => client.on('exit', res))
      await sleep(1000)
      loaded.push(await window())
      await clientDone
      runs.push(JSON.parse(out))
      ids.push(...readFileSync(idsFile, 'utf8').split('\n').filter(Boolean))
      idle.push(await window())
    }
    const has = db.sqlite.prepare('SELECT 1 FROM job_queue WHERE id = ?').pluck()
    const lost = ids.filter((id) => !has.get(id)).length
    engine.kill('SIGTERM')
    await new Promise((res) => engine?.on('exit', res))
    engine = null
    db.close()
    const accepted = runs.reduce((a, x) => a + x.accepted, 0)
    const r = {
      accepted,
      errors: runs.reduce((a, x) => a + x.errors, 0),
      seconds: runs.reduce((a, x) => a + x.seconds, 0),
      p50: Math.max(...runs.map((x) => x.p50)),
      p99: Math.max(...runs.map((x) => x.p99)),
    }
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length
    const idle1 = mean(idle)
    const rate = r.accepted / r.seconds
    const drop = 1 - mean(loaded) / idle1
    const offered = process.env.BENCH_HTTP_RATE ? `${process.env.BENCH_HTTP_RATE} requests/s offered` : 'as fast as answered'
    const pinned = process.env.BENCH_HTTP_CLIENT_CPUS ? `, client on CPU ${process.env.BENCH_HTTP_CLIENT_CPUS}` : ''
    console.log(
      `\n## HTTP ingress (${CONNECTIONS} keep-alive connections, ${offered}, 2 × ${LOAD_SECONDS} s${pinned}; engine as shipped draining the sh plugin)`,
    )
    line('accepted POST /plugin/echo-sh/poll', `${rate.toFixed(0)}/s`, '>= 3,000/s', rate >= 3000)
    line('latency p99 (p50), the worse run', `${r.p99.toFixed(1)} ms (${r.p50.toFixed(1)})`, '<= 25 ms', r.p99 <= 25)
    line('accepted jobs missing from the database', `${lost} of ${ids.length}`, '0 lost', lost === 0 && ids.length === accepted)
    line('refused or failed requests', String(r.errors), '(reported)', true)
    line(
      'engine completions under load',
      `${loaded.map((x) => x.toFixed(0)).join(', ')}/s −${(drop * 100).toFixed(0)}%`,
      `drop <= 15% (unloaded ${idle.map((x) => x.toFixed(0)).join(', ')}/s)`,
      drop <= 0.15,
    )
    // (c) The same enqueue in process, on a fresh copy of the schema.
    const inPath = join(dir, 'in.db')
    const inDb = openDb(inPath, {mode: 'create'})
    initSchema(inDb)
    inDb.close()
    const inproc = Math.max(inProcessRate(configPath, inPath, 5000), inProcessRate(configPath, inPath, 5000))
    line('… as a ratio to the enqueue in process', `×${(rate / inproc).toFixed(2)}`, `(reported; in process ${inproc.toFixed(0)}/s)`, true)
  } finally {
    engine?.kill('SIGKILL')
    rmSync(dir, {recursive: true, force: true})
  }
}

export default section
