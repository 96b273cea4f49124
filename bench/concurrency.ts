/**
 * The engine's throughput while CLI read commands run in a tight loop (jobs status, facts, breakers list,
 * jobs inspect), against the same engine without them. Goal: at most a 10% drop, zero busy errors.
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {openDb} from '../src/schema/db.js'
import {initSchema} from '../src/schema/migrations.js'
import type {Section} from './run.js'
import {enqueueMany} from './util.js'

const N = 1000

async function run(root: string, withReaders: boolean): Promise<{rate: number; reads: number; errors: number}> {
  const dir = mkdtempSync(join(tmpdir(), 'ductile-conc-'))
  try {
    const configPath = join(dir, 'config.yaml')
    writeFileSync(configPath, `service:\n  max_workers: 2\n  tick_interval: 1h\nstate:\n  path: ./d.db\nplugin_roots:\n  - ${join(root, 'test/fixtures/plugins')}\n`)
    const dbPath = join(dir, 'd.db')
    const db = openDb(dbPath, {mode: 'create'})
    initSchema(db)
    const ids = enqueueMany(db, 'echo-sh', N)
    const left = db.sqlite.prepare(`SELECT COUNT(*) FROM job_queue WHERE status IN ('queued', 'running')`).pluck()
    const t0 = performance.now()
    const engine: ChildProcess = spawn(process.execPath, [join(root, 'bin/run.js'), 'engine', 'start', '--config', configPath, '--log-level', 'error'], {stdio: 'ignore'})
    let reads = 0
    let errors = 0
    let stop = false
    const reader = (async () => {
      const cmds = [['jobs', 'status'], ['facts', 'echo-sh'], ['breakers', 'list'], ['jobs', 'inspect', ids[0]]]
      while (withReaders && !stop) {
        const args = cmds[reads % cmds.length]
        await new Promise<void>((resolve) =>
          execFile(process.execPath, [join(root, 'bin/run.js'), ...args, '--db', dbPath, '--json'], (err, stdout, stderr) => {
            if (err || /SQLITE_BUSY|database is locked/i.test(stderr)) errors++
            reads++
            resolve()
          }),
        )
      }
    })()
    while ((left.get() as number) > 0) await new Promise((r) => setTimeout(r, 20))
    const rate = N / ((performance.now() - t0) / 1000)
    stop = true
    await reader
    engine.kill('SIGTERM')
    await new Promise((r) => engine.on('exit', r))
    db.close()
    return {rate, reads, errors}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

const section: Section = async ({root}) => {
  console.log('\n## Engine throughput with CLI reads in a tight loop (1,000 jobs, max_workers 2)')
  const quiet = await run(root, false)
  const busy = await run(root, true)
  const quiet2 = await run(root, false)
  const base = (quiet.rate + quiet2.rate) / 2
  const drop = 1 - busy.rate / base
  console.log(`      alone ${quiet.rate.toFixed(0)}/s and ${quiet2.rate.toFixed(0)}/s; with readers ${busy.rate.toFixed(0)}/s, ${busy.reads} CLI reads, ${busy.errors} errors`)
  console.log(`${drop <= 0.1 ? 'ok  ' : 'MISS'}  ${'throughput drop with readers'.padEnd(44)} ${`${(drop * 100).toFixed(0)}%`.padStart(14)}   goal <= 10%`)
  console.log(`${busy.errors === 0 ? 'ok  ' : 'MISS'}  ${'busy/locked errors'.padEnd(44)} ${String(busy.errors).padStart(14)}   goal 0`)
}

export default section
