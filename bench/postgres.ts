/**
 * PostgreSQL benchmarks (issue 17), each against a throwaway cluster started here (scripts/pg-cluster.js,
 * PostgreSQL's default settings), measured in one run:
 * (a) queue overhead with 2 engines: the engine's queue code (claim, complete, transitions, attempts, job_log,
 *     facts; no subprocess) in two processes draining N jobs, against graphile-worker 0.17 draining N no-op
 *     jobs with two worker processes on the same server (goal: >= 0.5 × graphile-worker);
 * (b) chaos: 3 engines (`bin/run.js engine start`) drain 3,000 jobs of a plugin that records each run while one
 *     engine is killed with SIGKILL every few seconds and started again, and a 1-second schedule runs for a
 *     minute. Every job ends in exactly one terminal state, no job runs twice at once, every interrupted job
 *     is recovered within the lease, the schedule fires once per slot.
 * (c) wake-up latency and idle CPU, as bench/wake.ts measures them on SQLite (goals: p50 <= 5 ms, p95 <= 25 ms).
 * Knobs: BENCH_PG_ONLY (queue | wake | chaos), BENCH_PG_JOBS (a: 3000), BENCH_PG_ROUNDS (a: 2), BENCH_CHAOS_JOBS (3000),
 * BENCH_CHAOS_KILL_MS (3000).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {Db} from '../src/schema/db.js'
import {initSchema} from '../src/schema/migrations.js'
import {openStore} from '../src/schema/open.js'
import {formatTs, parseTs} from '../src/schema/time.js'
import {startCluster} from '../scripts/pg-cluster.js'
import type {Section} from './run.js'
import {enqueueMany, line} from './util.js'
import {measureWake} from './wake.js'

interface Cluster {
  url: string
  stop: () => void
}

const int = (v: string | undefined, d: number) => (v && Number.isFinite(Number(v)) ? Number(v) : d)

function database(cluster: Cluster, name: string): string {
  const admin = openStore(cluster.url, {mode: 'write'})
  admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  admin.exec(`CREATE DATABASE ${name}`)
  admin.close()
  const u = new URL(cluster.url)
  u.pathname = `/${name}`
  return u.toString()
}

const count = (db: Db, sql: string) => Number(Object.values(db.query(sql)[0] ?? {})[0] ?? 0)

/** Processes that print "ready", start on a line on stdin, and exit when done. */
async function readyProcesses(cmds: string[][], cwd: string): Promise<{go: () => void; exited: Promise<unknown[]>; kill: () => void}> {
  const children: ChildProcess[] = cmds.map((c) => spawn(c[0] as string, c.slice(1), {cwd, stdio: ['pipe', 'pipe', 'inherit']}))
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          let out = ''
          c.stdout?.on('data', (d) => {
            out += d
            if (out.includes('ready\n')) resolve()
          })
          c.on('exit', (code) => reject(new Error(`a bench process exited (${code}) before it was ready`)))
        }),
    ),
  )
  return {
    go: () => {
      for (const c of children) c.stdin?.write('go\n')
    },
    exited: Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : once(c, 'exit')))),
    kill: () => {
      for (const c of children) c.kill('SIGKILL')
    },
  }
}

/** Ours: two processes of the engine's queue code drain n jobs; jobs/s from "go" to the last exit. */
async function oursRound(cluster: Cluster, root: string, n: number, round: number): Promise<number> {
  const url = database(cluster, `ours_${round}`)
  const db = openStore(url, {mode: 'create'})
  initSchema(db)
  enqueueMany(db, 'p', n, (i) => ({i}))
  const worker = [process.execPath, '--import', 'tsx', join(root, 'bench', 'pg-queue-worker.ts'), url]
  const p = await readyProcesses([worker, worker], root)
  const t0 = performance.now()
  p.go()
  await p.exited
  const seconds = (performance.now() - t0) / 1000
  const ok = count(db, `SELECT COUNT(*) FROM job_queue WHERE status = 'succeeded'`)
  const twice = count(db, 'SELECT COUNT(*) FROM (SELECT job_id FROM job_attempts GROUP BY job_id HAVING COUNT(*) > 1) t')
  db.close()
  if (ok !== n || twice !== 0) throw new Error(`pg queue bench: ${ok} of ${n} succeeded, ${twice} claimed twice`)
  return n / seconds
}

/** graphile-worker: two worker processes (concurrency 1 each, as ours) drain n no-op jobs added at once. */
async function graphileRound(cluster: Cluster, root: string, n: number, round: number): Promise<number> {
  const url = database(cluster, `graphile_${round}`)
  const worker = [process.execPath, join(root, 'bench', 'graphile-worker.mjs'), url]
  // The first run installs graphile-worker's schema: one process first, then the second.
  const first = await readyProcesses([worker], root)
  const second = await readyProcesses([worker], root)
  const db = openStore(url, {mode: 'write'})
  const t0 = performance.now()
  db.query(
    `SELECT graphile_worker.add_jobs(array_agg(ROW('noop', json_build_object('i', g), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec)) FROM generate_series(1, ?) g`,
    [n],
  )
  while (count(db, 'SELECT COUNT(*) FROM graphile_worker.jobs') > 0) await new Promise((r) => setTimeout(r, 2))
  const seconds = (performance.now() - t0) / 1000
  db.close()
  first.kill()
  second.kill()
  return n / seconds
}

async function queueOverhead(cluster: Cluster, root: string): Promise<void> {
  const n = int(process.env.BENCH_PG_JOBS, 3000)
  const rounds = int(process.env.BENCH_PG_ROUNDS, 2)
  console.log(`\n## PostgreSQL queue overhead, 2 engines against graphile-worker 0.17 with 2 workers (${n} jobs, ${rounds} rounds alternating)`)
  for (let r = 0; r < rounds; r++) {
    const ours = await oursRound(cluster, root, n, r)
    const theirs = await graphileRound(cluster, root, n, r)
    line(
      `round ${r + 1}: ours ${ours.toFixed(0)} jobs/s, graphile ${theirs.toFixed(0)}`,
      `×${(ours / theirs).toFixed(2)}`,
      '>= 0.5 × graphile-worker',
      ours / theirs >= 0.5,
    )
  }
}

interface Killed {
  pid: number
  at: number
}

/** (b) The chaos run. */
async function chaos(cluster: Cluster, root: string): Promise<void> {
  const n = int(process.env.BENCH_CHAOS_JOBS, 3000)
  const killEvery = int(process.env.BENCH_CHAOS_KILL_MS, 3000)
  const leaseMs = 30_000
  console.log(`\n## PostgreSQL chaos: 3 engines, ${n} jobs, one engine SIGKILLed every ${killEvery / 1000} s and restarted, a 1 s schedule`)
  const dir = mkdtempSync(join(tmpdir(), 'ductile-chaos-'))
  try {
    const url = database(cluster, 'chaos')
    const config = join(dir, 'config.yaml')
    writeFileSync(
      config,
      `service:\n  name: chaos\n  max_workers: 2\n  tick_interval: 250ms\n  engine_lease: ${leaseMs / 1000}s\nstate:\n  url: ${url}\nplugin_roots:\n  - ${join(root, 'bench', 'plugins')}\n  - ${join(root, 'test', 'fixtures', 'plugins')}\nplugins:\n  recorder:\n    config: {dir: ${JSON.stringify(dir)}}\n    retry: {max_attempts: 10}\n  echo-sh:\n    schedules:\n      - {id: tick, every: 1s}\n`,
    )
    const db = openStore(url, {mode: 'create'})
    initSchema(db)
    enqueueMany(db, 'recorder', n)
    db.run(db.k.updateTable('job_queue').set({max_attempts: 10}).where('plugin', '=', 'recorder'))
    const start = () => spawn(process.execPath, [join(root, 'bin', 'run.js'), 'engine', 'start', '--config', config, '--log-level', 'error'], {stdio: 'ignore'})
    const engines: ChildProcess[] = [start(), start(), start()]
    const killed: Killed[] = []
    const t0 = Date.now()
    let kills = 0
    const killer = setInterval(() => {
      const i = Math.floor(Math.random() * engines.length)
      const victim = engines[i] as ChildProcess
      if (victim.pid) killed.push({pid: victim.pid, at: Date.now()})
      victim.kill('SIGKILL')
      kills++
      engines[i] = start()
    }, killEvery)
    const terminal = `SELECT COUNT(*) FROM job_queue WHERE plugin = 'recorder' AND status NOT IN ('queued', 'running')`
    while (count(db, terminal) < n) {
      if (Date.now() - t0 > 15 * 60_000) throw new Error(`chaos: ${count(db, terminal)} of ${n} jobs finished in 15 minutes`)
      await new Promise((r) => setTimeout(r, 250))
    }
    const drainS = (Date.now() - t0) / 1000
    // The schedule's jobs wait behind the backlog (FIFO, and if_running: skip): its minute starts once it is
    // drained, the kills going on.
    const drained = formatTs(new Date())
    await new Promise((r) => setTimeout(r, 60_000))
    clearInterval(killer)
    for (const e of engines) e.kill('SIGTERM')
    await Promise.all(engines.map((e) => (e.exitCode !== null ? null : once(e, 'exit'))))

    // 1. Every job in exactly one terminal state: one transition into a terminal status, none after it.
    const statuses = db.query(`SELECT status, COUNT(*) AS n FROM job_queue WHERE plugin = 'recorder' GROUP BY status ORDER BY status`)
    const twiceEnded = count(
      db,
      `SELECT COUNT(*) FROM (SELECT t.job_id FROM job_transitions t JOIN job_queue q ON q.id = t.job_id WHERE q.plugin = 'recorder'
         AND t.to_status IN ('succeeded', 'failed', 'timed_out', 'dead', 'skipped') GROUP BY t.job_id HAVING COUNT(*) <> 1) x`,
    )
    line('jobs in exactly one terminal state', `${n - twiceEnded} of ${n}`, 'all', twiceEnded === 0)
    console.log(`      ${statuses.map((s) => `${s.status} ${s.n}`).join(', ')}; drained in ${drainS.toFixed(0)} s, then a minute more; ${kills} kills in all`)
    // 2. No job ran twice at once: no run found another run's lock held; runs never outnumber attempts.
    const trace = existsSync(join(dir, 'trace')) ? readFileSync(join(dir, 'trace'), 'utf8').trim().split('\n') : []
    const overlaps = trace.filter((l) => l.startsWith('overlap ')).length
    const runs = new Map<string, number>()
    for (const l of trace) if (l.startsWith('start ')) runs.set(l.split(' ')[1] as string, (runs.get(l.split(' ')[1] as string) ?? 0) + 1)
    const attempts = new Map(db.query(`SELECT job_id, COUNT(*) AS n FROM job_attempts GROUP BY job_id`).map((r) => [String(r.job_id), Number(r.n)]))
    const tooMany = [...runs].filter(([job, k]) => k > (attempts.get(job) ?? 0)).length
    line('runs of one job at the same time', `${overlaps}`, '0', overlaps === 0)
    line('jobs run more often than claimed', `${tooMany}`, '0', tooMany === 0)
    // 3. Every interrupted attempt recovered within the lease of its engine's kill.
    const interrupted = db.query(
      `SELECT l.completed_at AS recovered_at, e.pid AS pid FROM job_log l
         JOIN job_attempts a ON a.job_id = l.job_id AND a.attempt = l.attempt
         JOIN engines e ON e.id = a.engine_id
        WHERE l.last_error LIKE 'interrupted:%'`,
    )
    const lags = interrupted
      .map((r) => {
        const kill = killed.find((k) => k.pid === Number(r.pid))
        return kill ? (parseTs(String(r.recovered_at))?.getTime() ?? 0) - kill.at : null
      })
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b)
    const worst = lags.at(-1) ?? 0
    line(`interrupted attempts recovered (${lags.length})`, `max ${(worst / 1000).toFixed(1)} s`, `<= lease (${leaseMs / 1000} s)`, worst <= leaseMs)
    if (lags.length) console.log(`      median ${((lags[Math.floor(lags.length / 2)] ?? 0) / 1000).toFixed(2)} s after the kill`)
    // 4. The 1-second schedule: one fire per slot across the engines.
    const fired = count(db, `SELECT COUNT(*) FROM schedule_decisions WHERE decision = 'fired'`)
    const inMinute = count(db, `SELECT COUNT(*) FROM schedule_decisions WHERE decision = 'fired' AND created_at >= '${drained}'`)
    const dupSlots = count(db, `SELECT COUNT(*) FROM (SELECT slot FROM schedule_decisions WHERE decision = 'fired' GROUP BY slot HAVING COUNT(*) > 1) x`)
    const scheduled = count(db, `SELECT COUNT(*) FROM job_queue WHERE plugin = 'echo-sh'`)
    line(
      `1 s schedule: ${inMinute} fires in the minute after`,
      `${dupSlots} slots twice`,
      'each slot once',
      dupSlots === 0 && scheduled === fired && inMinute > 0,
    )
    db.close()
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** (c) Wake-up latency and idle CPU as on SQLite (bench/wake.ts), the wake-up a NOTIFY. */
async function wake(cluster: Cluster, root: string): Promise<void> {
  console.log('\n## PostgreSQL wake-up: jobs enqueued by another process (200 `jobs enqueue`), idle engine CPU over 30 s')
  const r = await measureWake(root, {url: database(cluster, 'wake')})
  line('idle engine CPU (with its helpers)', `${(r.idleCpu * 100).toFixed(2)}%`, '<= 1% of a core', r.idleCpu <= 0.01)
  line('created_at → started_at p50', `${r.p50.toFixed(0)} ms`, '<= 5 ms', r.p50 <= 5)
  line('created_at → started_at p95', `${r.p95.toFixed(0)} ms (max ${r.max.toFixed(0)})`, '<= 25 ms', r.p95 <= 25)
}

const section: Section = async ({root}) => {
  const cluster = (await startCluster({})) as Cluster
  try {
    const only = process.env.BENCH_PG_ONLY
    if (!only || only === 'queue') await queueOverhead(cluster, root)
    if (!only || only === 'wake') await wake(cluster, root)
    if (!only || only === 'chaos') await chaos(cluster, root)
  } finally {
    cluster.stop()
  }
}

export default section
