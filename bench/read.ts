/**
 * Read-command benchmark on the generated database: the warm median time of each command's queries, their
 * query plans, and the whole-process time of two commands against a `node -e "require('better-sqlite3')"`
 * baseline measured in the same run.
 */
import {spawnSync} from 'node:child_process'

import {explainBreaker, explainJob, explainSchedule} from '../src/cli/explain.js'
import {DEFAULT_CIRCUIT_BREAKER} from '../src/config/defaults.js'
import {contextLineage} from '../src/queries/context.js'
import {readBreakerRecord, readJobRecord, readScheduleRecords} from '../src/queries/explain.js'
import {listBreakerTransitions, listBreakers} from '../src/queries/breakers.js'
import {getPluginState, listFacts, listFactsAt} from '../src/queries/facts.js'
import {listSnapshots} from '../src/queries/snapshots.js'
import {countJobsByStatus, findJob, findStuckJobs, listAttempts, listChildJobs, listJobs, listTransitions} from '../src/queries/jobs.js'
import {findLatestErrors, findSlowestJobs, listJobLogsForJob, searchJobLogs} from '../src/queries/logs.js'
import {listSchedules} from '../src/queries/schedules.js'
import {type Db, openDb} from '../src/schema/db.js'
import {explainPlan} from '../src/schema/sqlite.js'
import {tsAgo} from '../src/schema/time.js'

export interface QueryFigure {
  command: string
  medianMs: number
  plans: string[]
  fullScan: boolean
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

/** A plan line that reads a whole big table (or sorts all of a plugin's rows) fails the goal. */
export function isFullScan(plan: string[]): boolean {
  const scanBig = plan.some((l) => /^SCAN (job_log|plugin_facts)\b(?!.*USING (COVERING )?INDEX)/.test(l))
  const sortedScan = plan.some((l) => /^SCAN (job_log|plugin_facts)\b/.test(l)) && plan.some((l) => /TEMP B-TREE FOR ORDER BY/.test(l))
  return scanBig || sortedScan
}

/** The operator reads of each read command, as the command calls them. */
export function readWorkloads(db: Db, plugin: string): Record<string, () => unknown> {
  const n = (db.query('SELECT COUNT(*) AS n FROM job_queue')[0] as {n: number}).n
  const job = (db.query(`SELECT id FROM job_queue ORDER BY created_at DESC LIMIT 1 OFFSET ?`, [Math.max(0, Math.min(500, n - 1))])[0] as
    | {id: string}
    | undefined) ?? {id: 'none'}
  return {
    'jobs status': () => countJobsByStatus(db),
    'jobs list': () => listJobs(db, {limit: 50}),
    'jobs list --status failed': () => listJobs(db, {status: 'failed', limit: 50}),
    'jobs list --plugin': () => listJobs(db, {plugin, limit: 50}),
    'jobs stuck': () => findStuckJobs(db, tsAgo(3_600_000)),
    'jobs slowest': () => findSlowestJobs(db, tsAgo(86_400_000), 10, 86_400_000),
    'jobs slowest --since 1h': () => findSlowestJobs(db, tsAgo(3_600_000), 10, 3_600_000),
    'jobs errors --plugin': () => findLatestErrors(db, {plugin, limit: 1}),
    'jobs errors': () => findLatestErrors(db, {limit: 1}),
    'jobs logs': () => searchJobLogs(db, {limit: 50}),
    'jobs logs --plugin --status failed': () => searchJobLogs(db, {plugin, status: 'failed', limit: 50}),
    'jobs logs --from --to': () => searchJobLogs(db, {from: tsAgo(3 * 86_400_000), to: tsAgo(2 * 86_400_000), limit: 50}),
    'jobs inspect': () =>
      db.read(() => {
        findJob(db, job.id)
        listTransitions(db, job.id)
        listAttempts(db, job.id)
        listJobLogsForJob(db, job.id)
        listChildJobs(db, job.id)
        return contextLineage(db, job.id)
      }),
    'explain job': () => {
      const r = readJobRecord(db, job.id)
      return r && explainJob(r)
    },
    'explain breaker': () => explainBreaker(readBreakerRecord(db, plugin, 'poll'), DEFAULT_CIRCUIT_BREAKER),
    'explain schedule': () => readScheduleRecords(db, plugin).map((r) => explainSchedule(r)),
    'facts --at': () => listFactsAt(db, {plugin, at: tsAgo(15 * 86_400_000), limit: 20}),
    'state --at': () => listFactsAt(db, {plugin, at: tsAgo(15 * 86_400_000), limit: 1}),
    'config history': () => listSnapshots(db, 20),
    'breakers list': () => listBreakers(db),
    'breakers history': () => listBreakerTransitions(db, plugin, 'poll', 20),
    facts: () => listFacts(db, {plugin, limit: 20}),
    'facts --type': () => listFacts(db, {plugin, factType: `${plugin}.snapshot`, limit: 20}),
    state: () => getPluginState(db, plugin),
    'schedules list': () => listSchedules(db),
  }
}

export function benchQueries(path: string, plugin = 'plugin-07', runs = 31): QueryFigure[] {
  const db = openDb(path, {mode: 'read'})
  const figures: QueryFigure[] = []
  for (const [command, fn] of Object.entries(readWorkloads(db, plugin))) {
    const statements: {sql: string; params: readonly unknown[]}[] = []
    db.onQuery = (sql, params) => statements.push({sql, params})
    fn()
    db.onQuery = undefined
    const plans = statements.flatMap((s) => explainPlan(db, s.sql, s.params))
    const times: number[] = []
    for (let i = 0; i < runs; i++) {
      const t = process.hrtime.bigint()
      fn()
      times.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    figures.push({command, medianMs: median(times), plans, fullScan: isFullScan(plans)})
  }
  db.close()
  return figures
}

function runOnce(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint()
  const r = spawnSync(cmd, args, {stdio: 'ignore', env: {...process.env, NO_COLOR: '1'}})
  if (r.error || r.signal) throw new Error(`${args.join(' ')}: ${r.error?.message ?? r.signal}`)
  return Number(process.hrtime.bigint() - t) / 1e6
}

/** Every command that only reads the database, as an operator types it (the job for `jobs inspect` is one of the newest). */
export function readCommands(path: string, plugin = 'plugin-07'): Record<string, string[]> {
  const db = openDb(path, {mode: 'read'})
  const job = db.sqlite.prepare('SELECT id FROM job_queue ORDER BY created_at DESC LIMIT 1 OFFSET 100').pluck().get() as string
  db.close()
  return {
    'jobs status': ['jobs', 'status'],
    'jobs list': ['jobs', 'list'],
    'jobs list --status failed': ['jobs', 'list', '--status', 'failed'],
    'jobs stuck': ['jobs', 'stuck'],
    'jobs slowest': ['jobs', 'slowest'],
    'jobs errors': ['jobs', 'errors'],
    'jobs logs': ['jobs', 'logs'],
    'jobs inspect': ['jobs', 'inspect', job],
    'explain job': ['explain', 'job', job],
    'explain breaker': ['explain', 'breaker', plugin],
    'explain schedule': ['explain', 'schedule', plugin],
    'breakers list': ['breakers', 'list'],
    'breakers history': ['breakers', 'history', plugin],
    facts: ['facts', plugin],
    state: ['state', plugin],
    'schedules list': ['schedules', 'list'],
    'watch --once': ['watch', '--once'],
    metrics: ['metrics'],
    doctor: ['doctor'],
    'db info': ['db', 'info'],
    'db check': ['db', 'check'],
  }
}

/**
 * Whole-process time of each read command (median of `runs`) against node loading better-sqlite3, the two
 * run in turn so that each command has a baseline from the same moments of a noisy machine.
 */
export function benchColdStart(path: string, runs = 11) {
  const root = new URL('..', import.meta.url).pathname
  const baseline = () => runOnce(process.execPath, ['-e', "require('better-sqlite3')"])
  const all: number[] = []
  const commands = Object.entries(readCommands(path)).map(([name, args]) => {
    const base: number[] = []
    const times: number[] = []
    for (let i = 0; i < runs; i++) {
      base.push(baseline())
      times.push(runOnce(process.execPath, [`${root}bin/run.js`, ...args, '--db', path]))
    }
    all.push(...base)
    return {name, ms: median(times), ratio: median(times) / median(base)}
  })
  return {baselineMs: median(all), commands}
}
