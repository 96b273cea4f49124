import {execFileSync} from 'node:child_process'
import {readFileSync, readdirSync, readlinkSync} from 'node:fs'

import type {CpuAffinityMode} from '../config/types.js'
import {findOnPath} from '../lib/which.js'
import {errorMessage} from '../errors.js'

/**
 * Keeping the engine on the cores its workers need (service.cpu_affinity). max_workers defaults to one less
 * than the cores to leave a core for everything else, but Linux does not keep that core free on its own: the
 * engine is a chain of short-lived processes (engine, spawn helper, plugin), and beside a busy process every
 * wake-up of the chain may land behind it. Measured on 2 cores with CLI reads in a tight loop: the engine
 * lost 42–44% of its throughput unconfined and 1–6% confined to one core, at ×0.84–×0.94 of its unconfined
 * speed when alone (bench/RESULTS.md). Linux only; elsewhere nothing is confined.
 */

/** "0-2,5" → [0, 1, 2, 5]. */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = []
  for (const part of list.trim().split(',')) {
    if (!part) continue
    const [a = Number.NaN, b = a] = part.split('-').map(Number)
    for (let c = a; c <= b; c++) cpus.push(c)
  }
  return cpus
}

/** [0, 1, 2, 5] → "0-2,5" (as taskset and systemd's CPUAffinity= take it). */
export function formatCpuList(cpus: number[]): string {
  const parts: string[] = []
  for (let i = 0; i < cpus.length; ) {
    let j = i
    while (j + 1 < cpus.length && cpus[j + 1] === (cpus[j] ?? Number.NaN) + 1) j++
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`)
    i = j + 1
  }
  return parts.join(',')
}

/** Cpus_allowed_list of a /proc status file (a process's or one thread's), or null. */
function cpusAllowed(statusPath: string): string | null {
  try {
    return /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(statusPath, 'utf8'))?.[1] ?? null
  } catch {
    return null
  }
}

/** The CPUs a process may run on (its affinity, e.g. as systemd or docker --cpuset-cpus set it), or null off Linux. */
export function allowedCpus(pid: number | 'self' = 'self'): number[] | null {
  const list = cpusAllowed(`/proc/${pid}/status`)
  return list === null ? null : parseCpuList(list)
}

/**
 * The CPUs to confine the engine to, or null to leave it where it is. auto, when it may use more CPUs than
 * max_workers: the max_workers of them that the fewest other engines on this machine already keep to (`taken`,
 * one entry per engine and CPU), lowest first. Several engines then spread out instead of sharing CPU 0.
 */
export function affinityPlan(mode: CpuAffinityMode, maxWorkers: number, allowed: number[] | null, taken: number[] = []): number[] | null {
  if (mode === 'off' || !allowed || allowed.length <= maxWorkers) return null
  const load = (cpu: number) => taken.filter((c) => c === cpu).length
  return [...allowed]
    .sort((a, b) => load(a) - load(b) || a - b)
    .slice(0, maxWorkers)
    .sort((a, b) => a - b)
}

/**
 * Where the HTTP listeners' thread runs when the engine confined itself to `engine` of the `given` CPUs: on
 * those it left free (beside the engine, not on top of it), or on all it was given when it left none.
 */
export function cpusBeside(given: number[] | null, engine: number[]): number[] | null {
  if (!given) return null
  const free = given.filter((c) => !engine.includes(c))
  return free.length > 0 ? free : given
}

/** `engine start` names its process so that ps shows it and other engines find it (its comm starts with this). */
export const ENGINE_TITLE = 'ductile engine'

/** The CPUs other running engines keep to, one entry per engine and CPU (those that use them all count too). */
export function otherEnginesCpus(): number[] {
  const taken: number[] = []
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
  } catch {
    return taken
  }
  for (const pid of pids) {
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith(ENGINE_TITLE)) continue
      taken.push(...(allowedCpus(Number(pid)) ?? []))
    } catch {
      // gone, or not ours to read
    }
  }
  return taken
}

/**
 * Set the affinity of every thread of a process (children started later inherit it). Node has no call for
 * it, so: `taskset` (util-linux), else python3's os.sched_setaffinity. Throws with both reasons.
 */
export function confineProcess(pid: number, cpus: number[], o: {thread?: boolean} = {}): 'taskset' | 'python3' {
  const list = formatCpuList(cpus)
  const reasons: string[] = []
  const taskset = findOnPath('taskset')
  if (taskset) {
    try {
      execFileSync(taskset, [...(o.thread ? [] : ['--all-tasks']), '--pid', '--cpu-list', list, String(pid)], {stdio: ['ignore', 'ignore', 'pipe']})
      return 'taskset'
    } catch (e) {
      reasons.push(`taskset: ${String((e as {stderr?: Buffer}).stderr ?? errorMessage(e)).trim()}`)
    }
  } else reasons.push('taskset is not on the PATH')
  const python = findOnPath('python3')
  if (python) {
    try {
      const script = o.thread
        ? `import os, sys\nos.sched_setaffinity(int(sys.argv[1]), set(map(int, sys.argv[2].split(','))))\n`
        : `import os, sys\ncpus = set(map(int, sys.argv[2].split(',')))\nfor t in os.listdir('/proc/%s/task' % sys.argv[1]):\n    os.sched_setaffinity(int(t), cpus)\n`
      execFileSync(python, ['-I', '-c', script, String(pid), cpus.join(',')], {stdio: ['ignore', 'ignore', 'pipe']})
      return 'python3'
    } catch (e) {
      reasons.push(
        `python3: ${String((e as {stderr?: Buffer}).stderr ?? errorMessage(e))
          .trim()
          .split('\n')
          .pop()}`,
      )
    }
  } else reasons.push('python3 is not on the PATH')
  throw new Error(reasons.join('; '))
}

/** The id of the calling thread (Linux: /proc/thread-self is `<pid>/task/<tid>`), or null. */
export function currentThreadId(): number | null {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || null
  } catch {
    return null
  }
}

/** Every thread's affinity (thread id → CPU list), for tests. */
export function threadCpus(pid: number): Map<number, string> {
  const out = new Map<number, string>()
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const list = cpusAllowed(`/proc/${pid}/task/${t}/status`)
    if (list !== null) out.set(Number(t), list)
  }
  return out
}

/** What `engine start` did about service.cpu_affinity, for its log line. */
export type ConfineOutcome = {cpus: string; via: 'taskset' | 'python3'} | {cpus: string; error: string} | null

/** Confine this process (before the engine starts its threads and helper) as service.cpu_affinity says. */
export function confineEngine(mode: CpuAffinityMode, maxWorkers: number): ConfineOutcome {
  const cpus = affinityPlan(mode, maxWorkers, allowedCpus(), otherEnginesCpus())
  if (!cpus) return null
  try {
    return {cpus: formatCpuList(cpus), via: confineProcess(process.pid, cpus)}
  } catch (e) {
    return {cpus: formatCpuList(cpus), error: errorMessage(e)}
  }
}
