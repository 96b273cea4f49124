/**
 * The engine's throughput while CLI read commands run in a tight loop (jobs status, facts, breakers list,
 * jobs inspect), against the same engine without them. Goal: at most a 10% drop, zero busy errors. Measured
 * with the engine as shipped (max_workers defaults to max(1, cores - 1)) and with max_workers 2, beside which
 * two reference loops that only burn CPU show what any busy process costs the engine on this machine.
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {defaultMaxWorkers} from '../src/config/load.js'
import {openDb} from '../src/schema/db.js'
import {initSchema} from '../src/schema/migrations.js'
import type {Section} from './run.js'
import {enqueueMany, line} from './util.js'

const N = 1000

/** What runs beside the engine: nothing, the CLI reads, or a reference loop that only burns CPU. */
type Beside = 'nothing' | 'cli' | {spin: string[]}

async function run(root: string, beside: Beside, workers: number | null): Promise<{rate: number; reads: number; errors: number}> {
  const withReaders = beside === 'cli'
  const dir = mkdtempSync(join(tmpdir(), 'ductile-conc-'))
  try {
    const configPath = join(dir, 'config.yaml')
    writeFileSync(configPath, `service:\n${workers ? `  max_workers: ${workers}\n` : ''}  tick_interval: 1h\nstate:\n  path: ./d.db\nplugin_roots:\n  - ${join(root, 'test/fixtures/plugins')}\n`)
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
    const spinner = typeof beside === 'object' ? spawn(beside.spin[0], beside.spin.slice(1), {stdio: 'ignore'}) : null
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
    spinner?.kill('SIGKILL')
    engine.kill('SIGTERM')
    await new Promise((r) => engine.on('exit', r))
    db.close()
    return {rate, reads, errors}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

const SPIN = [process.execPath, '-e', 'for (;;) {}']

async function scenario(root: string, workers: number | null, label: string, references: boolean): Promise<void> {
  const quiet = await run(root, 'nothing', workers)
  const busy = await run(root, 'cli', workers)
  const quiet2 = await run(root, 'nothing', workers)
  const base = (quiet.rate + quiet2.rate) / 2
  const drop = (rate: number) => 1 - rate / base
  const pct = (rate: number) => `${(drop(rate) * 100).toFixed(0)}%`
  console.log(`      ${label}: alone ${quiet.rate.toFixed(0)}/s and ${quiet2.rate.toFixed(0)}/s; with readers ${busy.rate.toFixed(0)}/s, ${busy.reads} CLI reads, ${busy.errors} errors`)
  line(`drop with readers, ${label}`, pct(busy.rate), '<= 10%', drop(busy.rate) <= 0.1)
  line(`busy/locked errors, ${label}`, String(busy.errors), '0', busy.errors === 0)
  if (!references) return
  // References: a process that only keeps one core busy, at normal and at the lowest (SCHED_IDLE) priority.
  const spin = await run(root, {spin: SPIN}, workers)
  line(`… beside a CPU spin loop instead`, pct(spin.rate), '(reported)', true)
  if (existsSync('/usr/bin/chrt')) {
    const idle = await run(root, {spin: ['/usr/bin/chrt', '--idle', '0', ...SPIN]}, workers)
    line(`… beside the spin loop at SCHED_IDLE`, pct(idle.rate), '(reported)', true)
  }
}

const section: Section = async ({root}) => {
  console.log('\n## Engine throughput with CLI reads in a tight loop (1,000 jobs)')
  // As shipped: max_workers defaults to max(1, cores - 1), which leaves a core for everything else.
  await scenario(root, null, `default max_workers (${defaultMaxWorkers()})`, defaultMaxWorkers() >= 2)
  // Every core to the engine: any busy process then takes CPU the engine wanted.
  if (defaultMaxWorkers() < 2) await scenario(root, 2, 'max_workers 2', true)
}

export default section
