/**
 * The engine's throughput while CLI read commands run in a tight loop (jobs status, facts, breakers list,
 * jobs inspect), against the same engine without them. Goal: at most a 10% drop, zero busy errors. Measured
 * with the engine as shipped (max_workers defaults to max(1, cores - 1), and the engine keeps to that many
 * cores), with max_workers 2, and with cpu_affinity: off, beside two reference loops that only burn CPU to
 * show what any busy process costs the engine on this machine.
 */
import {execFile, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {join} from 'node:path'

import {defaultMaxWorkers} from '../src/config/defaults.js'
import type {Section} from './run.js'
import {drainByEngineProcess, line} from './util.js'

const N = 1000

/** What runs beside the engine: nothing, the CLI reads, or a reference loop that only burns CPU. */
type Beside = 'nothing' | 'cli' | {spin: string[]}

/** The engine's shape: max_workers (undefined: the default) and extra service config lines. */
interface Shape {
  workers?: number
  service?: string
}

async function run(root: string, beside: Beside, shape: Shape): Promise<{rate: number; reads: number; errors: number}> {
  const r = await drainByEngineProcess(root, N, {
    ...shape,
    beside:
      beside === 'nothing'
        ? undefined
        : ({dbPath, ids}) => {
            if (typeof beside === 'object') {
              const spinner = spawn(beside.spin[0], beside.spin.slice(1), {stdio: 'ignore'})
              return {
                stop: async () => {
                  spinner.kill('SIGKILL')
                  return {reads: 0, errors: 0}
                },
              }
            }
            let reads = 0
            let errors = 0
            let stop = false
            const cmds = [
              ['jobs', 'status'],
              ['facts', 'echo-sh'],
              ['breakers', 'list'],
              ['jobs', 'inspect', ids[0]],
            ]
            const loop = (async () => {
              while (!stop) {
                const args = cmds[reads % cmds.length]
                await new Promise<void>((resolve) =>
                  execFile(process.execPath, [join(root, 'bin/run.js'), ...args, '--db', dbPath, '--json'], (err, _stdout, stderr) => {
                    if (err || /SQLITE_BUSY|database is locked/i.test(stderr)) errors++
                    reads++
                    resolve()
                  }),
                )
              }
            })()
            return {
              stop: async () => {
                stop = true
                await loop
                return {reads, errors}
              },
            }
          },
  })
  return {rate: r.rate, reads: r.beside?.reads ?? 0, errors: r.beside?.errors ?? 0}
}

// Burns one core; ends by itself if the bench dies (its parent changes), never left spinning.
const SPIN = [process.execPath, '-e', 'const p = process.ppid; for (let i = 1; ; i++) if (i % 5e7 === 0 && process.ppid !== p) process.exit()']

/** Alone, beside the readers, alone again; the drop is against the mean of the two quiet runs. */
async function scenario(root: string, shape: Shape, label: string, references: boolean): Promise<number> {
  const quiet = await run(root, 'nothing', shape)
  const busy = await run(root, 'cli', shape)
  const quiet2 = await run(root, 'nothing', shape)
  const base = (quiet.rate + quiet2.rate) / 2
  const drop = (rate: number) => 1 - rate / base
  const pct = (rate: number) => `${(drop(rate) * 100).toFixed(0)}%`
  console.log(
    `      ${label}: alone ${quiet.rate.toFixed(0)}/s and ${quiet2.rate.toFixed(0)}/s; with readers ${busy.rate.toFixed(0)}/s, ${busy.reads} CLI reads, ${busy.errors} errors`,
  )
  line(`drop with readers, ${label}`, pct(busy.rate), '<= 10%', drop(busy.rate) <= 0.1)
  line(`busy/locked errors, ${label}`, String(busy.errors), '0', busy.errors === 0)
  if (references) {
    // References: a process that only keeps one core busy, at normal and at the lowest (SCHED_IDLE) priority.
    const spin = await run(root, {spin: SPIN}, shape)
    line(`… beside a CPU spin loop instead`, pct(spin.rate), '(reported)', true)
    if (existsSync('/usr/bin/chrt')) {
      const idle = await run(root, {spin: ['/usr/bin/chrt', '--idle', '0', ...SPIN]}, shape)
      line(`… beside the spin loop at SCHED_IDLE`, pct(idle.rate), '(reported)', true)
    }
  }
  return base
}

const section: Section = async ({root}) => {
  console.log('\n## Engine throughput with CLI reads in a tight loop (1,000 jobs)')
  const workers = defaultMaxWorkers()
  // As shipped: max_workers defaults to max(1, cores - 1), and with fewer workers than cores the engine
  // confines itself to max_workers of them (service.cpu_affinity: auto), so the core it leaves stays free.
  const shipped = await scenario(root, {}, `as shipped (max_workers ${workers})`, true)
  // Every core to the engine: any busy process then takes CPU the engine wanted.
  if (workers < 2) await scenario(root, {workers: 2}, 'max_workers 2 (all cores)', false)
  // The same engine left on every core (the default before cpu_affinity): the kernel does not keep a core free.
  if (availableParallelism() > workers) {
    const free = await scenario(root, {service: '  cpu_affinity: off\n'}, `cpu_affinity: off (max_workers ${workers})`, true)
    line(`… as shipped, alone, against cpu_affinity: off`, `×${(shipped / free).toFixed(2)}`, '(reported)', true)
  }
}

export default section
