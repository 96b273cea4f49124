/**
 * Engine benchmarks, in one run against the same machine state:
 * (a) the raw floor: Node spawning the trivial sh plugin, sequentially and 2 at a time;
 * (b) the engine draining 2,000 queued jobs of that plugin as shipped (the default config) and with max_workers
 *     2, run as operators run it (its own process, start-up included) (goal: >= 0.9 × floor);
 * (c) queue overhead without subprocesses: claim, complete, transitions, attempts, job_log, facts
 *     (goal: >= 2,500 jobs/s and >= 0.9 × a hand-written better-sqlite3 loop doing the same writes).
 */
import BetterSqlite3 from 'better-sqlite3'
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {defaultMaxWorkers} from '../src/config/defaults.js'
import {claimNextJob, completeAttempt} from '../src/queries/queue.js'
import {applyStateUpdates} from '../src/queries/state.js'
import {openDb} from '../src/schema/db.js'
import {jobLogId, uuidv7} from '../src/schema/ids.js'
import {initSchema} from '../src/schema/migrations.js'
import {checkpoint, setAutocheckpoint} from '../src/schema/sqlite.js'
import {formatTs} from '../src/schema/time.js'
import type {Section} from './run.js'
import {drainByEngineProcess, enqueueMany, line} from './util.js'

function spawnOnce(entry: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(entry, [], {detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: {PATH: process.env.PATH ?? ''}})
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.resume()
    child.on('error', reject)
    child.on('close', () => {
      JSON.parse(out)
      resolve()
    })
    child.stdin.end(`${JSON.stringify({protocol: 2, job_id: 'x', command: 'poll', config: {}, state: {}, context: {}})}\n`)
  })
}

async function floor(entry: string, n: number, concurrency: number): Promise<number> {
  const t0 = performance.now()
  let next = 0
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (next < n) {
        next++
        await spawnOnce(entry)
      }
    }),
  )
  return n / ((performance.now() - t0) / 1000)
}

/**
 * (c) The engine's own queue code, no subprocess, in the engine's steady state: one transaction per job
 * writes an attempt's completion, claims the next job, then writes its facts and state (WorkerLoop.finishAttempt).
 */
export function queueOverhead(n: number): {rate: number; walPagesPerJob: number} {
  const dir = mkdtempSync(join(tmpdir(), 'ductile-bench-'))
  try {
    const path = join(dir, 'q.db')
    const db = openDb(path, {mode: 'create'})
    initSchema(db)
    enqueueMany(db, 'p', n, (i) => ({i}))
    checkpoint(db, 'TRUNCATE')
    // As in the engine, whose checkpoints run on their own thread: every page the jobs write stays in the WAL.
    setAutocheckpoint(db, 0)
    const now = formatTs(new Date())
    const claim = () => claimNextJob(db, {now, excludePlugins: new Set(), snapshotId: null, enginePid: process.pid, engineId: null})
    const t0 = performance.now()
    let job = claim()
    let done = 0
    while (job) {
      const current = job
      job = db.tx(() => {
        completeAttempt(db, current, {status: 'succeeded', result: '{"status":"ok","result":"x"}', lastError: null, stderr: '', now})
        const next = claim()
        applyStateUpdates(db, {plugin: 'p', command: 'poll', jobId: current.id, updates: {cursor: current.id}, rules: [{fact_type: 'p.snapshot'}], now})
        return next
      })
      done++
    }
    if (done !== n) throw new Error(`queue bench: ${done} of ${n} jobs`)
    const rate = n / ((performance.now() - t0) / 1000)
    const pageSize = db.sqlite.pragma('page_size', {simple: true}) as number
    const frames = (statSync(`${path}-wal`).size - 32) / (pageSize + 24)
    db.close()
    return {rate, walPagesPerJob: frames / n}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** (c) baseline: the same writes with hand-written prepared statements. */
function handWritten(n: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'ductile-bench-'))
  try {
    const path = join(dir, 'h.db')
    const setup = openDb(path, {mode: 'create'})
    initSchema(setup)
    setup.close()
    const db = new BetterSqlite3(path)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('busy_timeout = 5000')
    const base = Date.now() - n
    const now = formatTs(new Date())
    const ins = db.prepare(
      `INSERT INTO job_queue (id, plugin, command, payload, status, attempt, max_attempts, submitted_by, created_at) VALUES (?, 'p', 'poll', ?, 'queued', 1, 1, 'bench', ?)`,
    )
    const tr = db.prepare(`INSERT INTO job_transitions (job_id, from_status, to_status, reason, created_at) VALUES (?, ?, ?, ?, ?)`)
    for (let i = 0; i < n; i++) {
      const id = uuidv7()
      db.transaction(() => {
        const at = formatTs(new Date(base + i))
        ins.run(id, JSON.stringify({i}), at)
        tr.run(id, null, 'queued', null, at)
      }).immediate()
    }
    const pick = db.prepare(`SELECT * FROM job_queue WHERE status = 'queued' AND (next_retry_at IS NULL OR next_retry_at <= ?) ORDER BY created_at, id LIMIT 1`)
    const run = db.prepare(`UPDATE job_queue SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'`)
    const att = db.prepare(`INSERT INTO job_attempts (job_id, attempt, created_at, engine_pid) VALUES (?, ?, ?, ?)`)
    const seq = db.prepare(`UPDATE storage_sequences SET value = value + 1 WHERE name = 'plugin_facts' RETURNING value`)
    const fact = db.prepare(
      `INSERT INTO plugin_facts (id, seq, plugin_name, fact_type, job_id, command, fact_json, created_at) VALUES (?, ?, 'p', 'p.snapshot', ?, 'poll', ?, ?)`,
    )
    const state = db.prepare(
      `INSERT INTO plugin_state (plugin_name, state, updated_at) VALUES ('p', ?, ?) ON CONFLICT (plugin_name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
    )
    const fin = db.prepare(`UPDATE job_queue SET status = 'succeeded', completed_at = ?, last_error = NULL WHERE id = ? AND status = 'running' AND attempt = ?`)
    const log = db.prepare(
      `INSERT INTO job_log (id, job_id, plugin, command, status, result, attempt, submitted_by, created_at, completed_at, last_error, stderr, started_at) VALUES (?, ?, 'p', 'poll', 'succeeded', ?, ?, 'bench', ?, ?, NULL, '', ?) ON CONFLICT (id) DO NOTHING`,
    )
    type Claimed = {id: string; attempt: number; created_at: string}
    const claim = (): Claimed | null => {
      const j = pick.get(now) as Claimed | undefined
      if (!j) return null
      run.run(now, j.id)
      tr.run(j.id, 'queued', 'running', null, now)
      att.run(j.id, j.attempt, now, process.pid)
      return j
    }
    const t0 = performance.now()
    let job = db.transaction(claim).immediate()
    while (job) {
      const current: Claimed = job
      job = db
        .transaction((): Claimed | null => {
          const s = (seq.get() as {value: number}).value
          const json = JSON.stringify({cursor: current.id})
          fact.run(uuidv7(), s, current.id, json, now)
          state.run(json, now)
          fin.run(now, current.id, current.attempt)
          tr.run(current.id, 'running', 'succeeded', null, now)
          log.run(jobLogId(current.id, current.attempt), current.id, '{"status":"ok","result":"x"}', current.attempt, current.created_at, now, now)
          return claim()
        })
        .immediate()
    }
    const rate = n / ((performance.now() - t0) / 1000)
    db.close()
    return rate
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

const section: Section = async ({root}) => {
  const entry = join(root, 'test/fixtures/plugins/echo-sh/run.sh')
  console.log('\n## Engine throughput (trivial sh plugin, 2,000 jobs)')
  await floor(entry, 50, 2) // warm the page cache and the spawn path
  // As shipped: the default config (max_workers = cores − 1, at least 1; cpu_affinity auto confines the engine
  // to that many CPUs when there are more), then max_workers 2 with the rest of the config as shipped.
  const shipped = defaultMaxWorkers()
  for (const [workers, label] of [
    [undefined, `engine as shipped (max_workers ${shipped})`],
    [2, 'engine, max_workers 2'],
  ] as const) {
    const n = workers ?? shipped
    // Floor before and after the drain, so both see the same machine and process state.
    const f1 = await floor(entry, 1000, n)
    const e = (await drainByEngineProcess(root, 2000, {workers})).rate
    const f2 = await floor(entry, 1000, n)
    const f = (f1 + f2) / 2
    line(label, `${e.toFixed(0)}/s ×${(e / f).toFixed(2)}`, `>= 0.9 × floor (${f1.toFixed(0)}, ${f2.toFixed(0)}/s)`, e / f >= 0.9)
  }
  console.log('\n## Queue overhead without subprocesses (5,000 jobs, one transaction per job as the engine runs; best of 3)')
  const n = 5000
  const runs = [queueOverhead(n), queueOverhead(n), queueOverhead(n)]
  const ours = Math.max(...runs.map((r) => r.rate))
  const hand = Math.max(handWritten(n), handWritten(n), handWritten(n))
  line('claim + facts + state + complete', `${ours.toFixed(0)}/s`, '>= 2,500/s', ours >= 2500)
  line('… against hand-written better-sqlite3', `×${(ours / hand).toFixed(2)}`, `>= 0.9 × ${hand.toFixed(0)}/s`, ours / hand >= 0.9)
  const pages = runs[0]?.walPagesPerJob ?? Number.NaN
  line('WAL pages written per job', pages.toFixed(2), '(reported: the cost of every index)', true)
}

export default section
