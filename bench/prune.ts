/**
 * Prune benchmark on a copy of the 1M-row database: delete job_log rows older than 7 days (about 77%) with
 * `prune`, while a second process inserts one row per transaction in a loop; then the same with a single
 * DELETE statement on a fresh copy. Reports total time (as a ratio to the single DELETE), the writer's
 * maximum and 99th-percentile insert latency, and the peak WAL size.
 * Goals: writer stall <= 100 ms, WAL <= 64 MiB, time <= 1.5 × the single DELETE. Then the same prune beside a
 * writer that is not ours (Python's sqlite3 module), BENCH_PRUNE_PY_RUNS times (default 3).
 */
import {spawn} from 'node:child_process'
import {closeSync, copyFileSync, fsyncSync, openSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {prune} from '../src/queries/maintenance.js'
import {openDb} from '../src/schema/db.js'
import {checkpoint} from '../src/schema/sqlite.js'
import {formatTs} from '../src/schema/time.js'
import type {Section} from './run.js'
import {line} from './util.js'

const WRITER = `
const D = require('better-sqlite3'); const fs = require('fs')
const path = process.argv[1]
const db = new D(path); db.pragma('busy_timeout = 5000'); db.pragma('synchronous = NORMAL'); db.pragma('journal_size_limit = 67108864') // as the engine's connection
const ins = db.prepare("INSERT INTO job_transitions (job_id, from_status, to_status, created_at) VALUES ('bench-writer', NULL, 'queued', '2099-01-01 00:00:00.000')")
const lat = []; let wal = 0; let errors = 0; let stop = false
process.on('SIGTERM', () => { stop = true })
const parent = process.ppid // the bench died: stop rather than grow the WAL forever
process.stdout.write('ready\\n')
const tick = () => {
  const end = Date.now() + 50
  while (Date.now() < end) {
    const t = process.hrtime.bigint()
    try { ins.run() } catch (e) { errors++ }
    lat.push(Number(process.hrtime.bigint() - t) / 1e6)
    try { wal = Math.max(wal, fs.statSync(path + '-wal').size) } catch {}
  }
  if (stop || process.ppid !== parent) {
    lat.sort((a, b) => a - b)
    fs.writeSync(1, JSON.stringify({max: lat[lat.length - 1], p99: lat[Math.floor(lat.length * 0.99)], n: lat.length, wal, errors}) + '\\n')
    db.close(); process.exit(0)
  }
  setImmediate(tick)
}
tick()
`

/**
 * A writer that is not ours: Python's sqlite3 module with its defaults (SQLite's default busy handler, a 5 s
 * timeout, synchronous FULL, automatic checkpoints), one job_log row per transaction, 5 ms apart.
 */
const PY_WRITER = `
import json, os, signal, sqlite3, sys, time
path = sys.argv[1]
con = sqlite3.connect(path)
stop = False
def end(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, end)
parent = os.getppid()
lat, errors, wal, i = [], 0, 0, 0
print('ready', flush=True)
while not stop and os.getppid() == parent:
    i += 1
    t = time.perf_counter()
    try:
        con.execute("INSERT INTO job_log (id, job_id, plugin, command, status, attempt, submitted_by, created_at, completed_at) VALUES (?, 'bench-writer', 'bench-writer', 'poll', 'succeeded', 1, 'python', '2099-01-01 00:00:00.000', '2099-01-01 00:00:00.000')", ('py-%d-%d' % (os.getpid(), i),))
        con.commit()
    except sqlite3.OperationalError:
        errors += 1
        con.rollback()
    lat.append((time.perf_counter() - t) * 1000)
    try:
        wal = max(wal, os.stat(path + '-wal').st_size)
    except OSError:
        pass
    time.sleep(0.005)
lat.sort()
print(json.dumps({'max': lat[-1], 'p99': lat[int(len(lat) * 0.99)], 'n': len(lat), 'wal': wal, 'errors': errors}), flush=True)
`

interface WriterReport {
  maxMs: number
  p99Ms: number
  walPeak: number
  errors: number
  inserts: number
}

async function withWriter(root: string, path: string, work: () => Promise<void> | void, kind: 'node' | 'python' = 'node'): Promise<WriterReport> {
  const w =
    kind === 'node'
      ? spawn(process.execPath, ['-e', WRITER, path], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']})
      : spawn('python3', ['-c', PY_WRITER, path], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']})
  let out = ''
  w.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  let exited = false
  w.on('exit', () => (exited = true))
  while (!out.includes('ready')) {
    if (exited) throw new Error('the writer process died before it was ready')
    await new Promise((r) => setTimeout(r, 10))
  }
  await new Promise((r) => setTimeout(r, 300))
  await work()
  await new Promise((r) => setTimeout(r, 300))
  const done = new Promise((r) => w.on('exit', r))
  w.kill('SIGTERM')
  await done
  const rep = JSON.parse(out.slice(out.indexOf('\n') + 1)) as {max: number; p99: number; n: number; wal: number; errors: number}
  return {maxMs: rep.max, p99Ms: rep.p99, walPeak: rep.wal, errors: rep.errors, inserts: rep.n}
}

/** A fresh copy of the database, flushed (or the first checkpoint's fsync pays for writing back 1.2 GB inside a measurement). */
function freshCopy(from: string, to: string): void {
  for (const x of ['', '-wal', '-shm']) rmSync(to + x, {force: true})
  copyFileSync(from, to)
  const fd = openSync(to, 'r+')
  fsyncSync(fd)
  closeSync(fd)
}

const removeCopy = (f: string) => {
  for (const x of ['', '-wal', '-shm']) rmSync(f + x, {force: true})
}

/** `prune --older-than 7d --table job_log` on a fresh copy while a writer of the given kind inserts. */
export async function pruneBeside(root: string, dbPath: string, kind: 'node' | 'python') {
  const copy = join(root, 'bench', 'data', `prune-${kind}.db`)
  freshCopy(dbPath, copy)
  try {
    let ms = 0
    let deleted = 0
    const writer = await withWriter(
      root,
      copy,
      async () => {
        const db = openDb(copy, {mode: 'write'})
        const t0 = performance.now()
        const r = await prune(db, {tables: ['job_log'], retention: {job_log: 7 * 86_400_000}})
        ms = performance.now() - t0
        deleted = r.total_deleted
        db.close()
      },
      kind,
    )
    return {ms, deleted, writer}
  } finally {
    removeCopy(copy)
  }
}

/** The reference's manual prune: one DELETE statement, on a fresh copy, beside our writer. */
async function singleDelete(root: string, dbPath: string) {
  const copy = join(root, 'bench', 'data', 'prune-single.db')
  freshCopy(dbPath, copy)
  try {
    const cutoff = formatTs(new Date(Date.now() - 7 * 86_400_000))
    let ms = 0
    let deleted = 0
    const writer = await withWriter(root, copy, () => {
      const db = openDb(copy, {mode: 'write'})
      const t0 = performance.now()
      deleted = Number(db.sqlite.prepare('DELETE FROM job_log WHERE completed_at < ?').run(cutoff).changes)
      ms = performance.now() - t0
      checkpoint(db, 'TRUNCATE')
      db.close()
    })
    return {ms, deleted, writer}
  } finally {
    removeCopy(copy)
  }
}

const section: Section = async ({dbPath, root}) => {
  console.log('\n## Prune 7-day-old job_log rows of the 1M-row database while another process writes')
  const single = await singleDelete(root, dbPath)
  const ours = await pruneBeside(root, dbPath, 'node')
  const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`
  console.log(
    `      single DELETE: ${single.deleted} rows in ${(single.ms / 1000).toFixed(1)} s; writer max ${single.writer.maxMs.toFixed(0)} ms, p99 ${single.writer.p99Ms.toFixed(1)} ms, WAL peak ${mib(single.writer.walPeak)}`,
  )
  console.log(
    `      prune:         ${ours.deleted} rows in ${(ours.ms / 1000).toFixed(1)} s; writer ${ours.writer.inserts} inserts, ${ours.writer.errors} errors`,
  )
  line('prune time / single DELETE', `×${(ours.ms / single.ms).toFixed(2)}`, '<= 1.5', ours.ms / single.ms <= 1.5)
  line('writer max insert latency', `${ours.writer.maxMs.toFixed(1)} ms`, '<= 100 ms', ours.writer.maxMs <= 100)
  line('writer p99 insert latency', `${ours.writer.p99Ms.toFixed(2)} ms`, '(reported)', true)
  line('WAL peak during prune', `${(ours.writer.walPeak / 1048576).toFixed(1)} MiB`, '<= 64 MiB', ours.writer.walPeak <= 64 * 1048576)
  // A writer that is not ours, as the reference's users have them.
  const runs = Number(process.env.BENCH_PRUNE_PY_RUNS ?? 3)
  const py = []
  for (let i = 0; i < runs; i++) py.push(await pruneBeside(root, dbPath, 'python'))
  const worst = Math.max(...py.map((r) => r.writer.maxMs))
  const slowest = Math.max(...py.map((r) => r.ms))
  console.log(
    `      beside Python's sqlite3 (5 ms between inserts), ${runs} runs: writer max ${py.map((r) => r.writer.maxMs.toFixed(0)).join(', ')} ms, p99 ${py.map((r) => r.writer.p99Ms.toFixed(1)).join(', ')} ms, prune ${py.map((r) => (r.ms / 1000).toFixed(1)).join(', ')} s, ${py.reduce((n, r) => n + r.writer.errors, 0)} errors`,
  )
  line("Python writer's max wait (worst run)", `${worst.toFixed(1)} ms`, '<= 100 ms', worst <= 100)
  line('prune time beside it / single DELETE', `×${(slowest / single.ms).toFixed(2)}`, '<= 1.5', slowest / single.ms <= 1.5)
}

export default section
