/**
 * Read-command benchmark on the generated database: the warm median time of each command's queries, their
 * query plans, and the whole-process time of two commands against a `node -e "require('better-sqlite3')"`
 * baseline measured in the same run.
 */
import {execFileSync} from 'node:child_process'

import {contextLineage} from '../src/queries/context.js'
import {listBreakerTransitions, listBreakers} from '../src/queries/breakers.js'
import {getPluginState, listFacts} from '../src/queries/facts.js'
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
  const n = (db.sqlite.prepare('SELECT COUNT(*) AS n FROM job_queue').get() as {n: number}).n
  const job = (db.sqlite.prepare(`SELECT id FROM job_queue ORDER BY created_at DESC LIMIT 1 OFFSET ?`).get(Math.max(0, Math.min(500, n - 1))) as
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

function timeProcess(cmd: string, args: string[], runs: number): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    execFileSync(cmd, args, {stdio: 'ignore', env: {...process.env, NO_COLOR: '1'}})
    times.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return median(times)
}

export function benchColdStart(path: string, plugin = 'plugin-07', runs = 15) {
  const root = new URL('..', import.meta.url).pathname
  const baseline = timeProcess(process.execPath, ['-e', "require('better-sqlite3')"], runs)
  const status = timeProcess(process.execPath, [`${root}bin/run.js`, 'jobs', 'status', '--db', path], runs)
  const facts = timeProcess(process.execPath, [`${root}bin/run.js`, 'facts', plugin, '--db', path], runs)
  return {baselineMs: baseline, jobsStatusMs: status, factsMs: facts, jobsStatusRatio: status / baseline, factsRatio: facts / baseline}
}
