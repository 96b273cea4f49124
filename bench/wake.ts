/**
 * Wake-up latency of jobs enqueued by another process, and the idle engine's CPU.
 * An engine runs as operators run it (`bin/run.js engine start`, default config: one free worker). Then:
 * (a) idle: the CPU time of the engine and every process under it over 30 s, as a share of one core
 *     (goal <= 1%);
 * (b) latency: 200 `ductile jobs enqueue` processes one after another, each job finished before the next is
 *     enqueued; created_at → started_at of each job as the database records them (goal p50 <= 5 ms,
 *     p95 <= 25 ms).
 */
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {openStore} from '../src/schema/open.js'
import {initSchema} from '../src/schema/migrations.js'
import {parseTs} from '../src/schema/time.js'
import {median, percentile} from './read.js'
import type {Section} from './run.js'
import {line} from './util.js'

const CLK_TCK = 100

/** utime + stime (clock ticks) of a process and all its descendants. */
function cpuTicks(root: number): number {
  const stats = new Map<number, {ppid: number; ticks: number}>()
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      stats.set(Number(p), {ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12])})
    } catch {
      // gone
    }
  }
  let total = 0
  const walk = (pid: number) => {
    total += stats.get(pid)?.ticks ?? 0
    for (const [child, s] of stats) if (s.ppid === pid) walk(child)
  }
  walk(root)
  return total
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `url`: a PostgreSQL database (bench/postgres.ts) instead of a file: the wake-up is then a NOTIFY. */
export async function measureWake(root: string, o: {enqueues?: number; idleSeconds?: number; url?: string} = {}) {
  const n = o.enqueues ?? 200
  const idleSeconds = o.idleSeconds ?? 30
  const dir = mkdtempSync(join(tmpdir(), 'ductile-bench-'))
  const config = join(dir, 'config.yaml')
  writeFileSync(config, `state:\n  ${o.url ? `url: ${o.url}` : 'path: ./d.db'}\nplugin_roots:\n  - ${join(root, 'test/fixtures/plugins')}\n`)
  const db = openStore(o.url ?? join(dir, 'd.db'), {mode: 'create'})
  initSchema(db)
  const run = join(root, 'bin/run.js')
  const engine: ChildProcess = spawn(process.execPath, [run, 'engine', 'start', '--config', config, '--log-level', 'error'], {stdio: 'ignore'})
  const job = {get: (id: string) => db.query('SELECT status, created_at, started_at FROM job_queue WHERE id = ?', [id])[0]}
  const enqueue = () => execFileSync(process.execPath, [run, 'jobs', 'enqueue', 'echo-sh', '--config', config], {encoding: 'utf8'}).trim()
  const finished = async (id: string) => {
    for (;;) {
      const r = job.get(id) as {status: string; created_at: string; started_at: string | null}
      if (r.status === 'succeeded') return r
      if (r.status !== 'queued' && r.status !== 'running') throw new Error(`wake bench: job ${id} ended ${r.status}`)
      if (engine.exitCode !== null) throw new Error('wake bench: the engine exited')
      await sleep(5)
    }
  }
  try {
    // Warm: the engine is up, its helper started, the plugin's files cached.
    for (let i = 0; i < 3; i++) await finished(enqueue())
    await sleep(2000)
    const pid = engine.pid as number
    const t0 = cpuTicks(pid)
    const w0 = performance.now()
    await sleep(idleSeconds * 1000)
    const idle = (cpuTicks(pid) - t0) / CLK_TCK / ((performance.now() - w0) / 1000)
    const latencies: number[] = []
    for (let i = 0; i < n; i++) {
      const r = await finished(enqueue())
      latencies.push((parseTs(r.started_at)?.getTime() ?? Number.NaN) - (parseTs(r.created_at)?.getTime() ?? Number.NaN))
    }
    return {idleCpu: idle, p50: median(latencies), p95: percentile(latencies, 95), max: Math.max(...latencies)}
  } finally {
    const exited = new Promise((r) => engine.on('exit', r))
    engine.kill('SIGTERM')
    await exited
    db.close()
    rmSync(dir, {recursive: true, force: true})
  }
}

const section: Section = async ({root}) => {
  console.log('\n## Wake-up: jobs enqueued by another process (200 `jobs enqueue`), idle engine CPU over 30 s')
  const r = await measureWake(root)
  line('idle engine CPU (with its helpers)', `${(r.idleCpu * 100).toFixed(2)}%`, '<= 1% of a core', r.idleCpu <= 0.01)
  line('created_at → started_at p50', `${r.p50.toFixed(0)} ms`, '<= 5 ms', r.p50 <= 5)
  line('created_at → started_at p95', `${r.p95.toFixed(0)} ms (max ${r.max.toFixed(0)})`, '<= 25 ms', r.p95 <= 25)
}

export default section
