/**
 * Prune benchmark on a copy of the 1M-row database: delete job_log rows older than 7 days (about 77%) with
 * `prune`, while a second process inserts one row per transaction in a loop; then the same with a single
 * DELETE statement on a fresh copy. Reports total time (as a ratio to the single DELETE), the writer's
 * maximum and 99th-percentile insert latency, and the peak WAL size.
 * Goals: writer stall <= 100 ms, WAL <= 64 MiB, time <= 1.5 × the single DELETE.
 */
import {spawn} from 'node:child_process'
import {closeSync, copyFileSync, fsyncSync, openSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {prune} from '../src/queries/maintenance.js'
import {openDb} from '../src/schema/db.js'
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

interface WriterReport {
  maxMs: number
  p99Ms: number
  walPeak: number
  errors: number
  inserts: number
}

async function withWriter(root: string, path: string, work: () => Promise<void> | void): Promise<WriterReport> {
  const w = spawn(process.execPath, ['-e', WRITER, path], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']})
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

const section: Section = async ({dbPath, root}) => {
  console.log('\n## Prune 7-day-old job_log rows of the 1M-row database while another process writes')
  const dir = join(root, 'bench', 'data')
  const a = join(dir, 'prune-a.db')
  const b = join(dir, 'prune-b.db')
  for (const f of [a, b]) {
    for (const s of ['-wal', '-shm']) rmSync(f + s, {force: true})
    copyFileSync(dbPath, f)
    // Flush the copy now, or the first checkpoint's fsync pays for writing back 1.2 GB inside a measurement.
    const fd = openSync(f, 'r+')
    fsyncSync(fd)
    closeSync(fd)
  }
  const cutoff = formatTs(new Date(Date.now() - 7 * 86_400_000))
  try {
    // Baseline: one DELETE statement.
    let single = 0
    let deletedSingle = 0
    const base = await withWriter(root, b, () => {
      const db = openDb(b, {mode: 'write'})
      const t0 = performance.now()
      deletedSingle = Number(db.sqlite.prepare('DELETE FROM job_log WHERE completed_at < ?').run(cutoff).changes)
      single = performance.now() - t0
      db.sqlite.pragma('wal_checkpoint(TRUNCATE)')
      db.close()
    })
    // Ours.
    let ours = 0
    let deleted = 0
    const rep = await withWriter(root, a, async () => {
      const db = openDb(a, {mode: 'write'})
      const t0 = performance.now()
      const r = await prune(db, {tables: ['job_log'], retention: {job_log: 7 * 86_400_000}})
      ours = performance.now() - t0
      deleted = r.total_deleted
      db.close()
    })
    console.log(
      `      single DELETE: ${deletedSingle} rows in ${(single / 1000).toFixed(1)} s; writer max ${base.maxMs.toFixed(0)} ms, p99 ${base.p99Ms.toFixed(1)} ms, WAL peak ${(base.walPeak / 1048576).toFixed(0)} MiB`,
    )
    console.log(`      prune:         ${deleted} rows in ${(ours / 1000).toFixed(1)} s; writer ${rep.inserts} inserts, ${rep.errors} errors`)
    line('prune time / single DELETE', `×${(ours / single).toFixed(2)}`, '<= 1.5', ours / single <= 1.5)
    line('writer max insert latency', `${rep.maxMs.toFixed(1)} ms`, '<= 100 ms', rep.maxMs <= 100)
    line('writer p99 insert latency', `${rep.p99Ms.toFixed(2)} ms`, '(reported)', true)
    line('WAL peak during prune', `${(rep.walPeak / 1048576).toFixed(1)} MiB`, '<= 64 MiB', rep.walPeak <= 64 * 1048576)
  } finally {
    for (const f of [a, b]) for (const s of ['', '-wal', '-shm']) rmSync(f + s, {force: true})
  }
}

export default section
