import {type Check, runChecks} from '../cli/doctor.js'
import {DEFAULT_ENGINE_LEASE_MS} from '../config/defaults.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {listBreakers, recentBreakerTransitions} from '../queries/breakers.js'
import {listLiveEngines} from '../queries/engines.js'
import {getPluginState, listFacts} from '../queries/facts.js'
import {countJobsByPluginAndStatus, findJob, findJobTree, inspectJob, listJobs} from '../queries/jobs.js'
import {searchJobLogs} from '../queries/logs.js'
import {completionBuckets, recentRuns} from '../queries/metrics.js'
import {activeSchedules, lateSchedules} from '../queries/health.js'
import {readOverview} from '../queries/overview.js'
import {listSchedules} from '../queries/schedules.js'
import type {Db} from '../schema/db.js'
import {JOB_STATUSES, type JobStatus} from '../schema/definition.js'
import {storeSize} from '../schema/open.js'
import {formatTs, parseTs} from '../schema/time.js'
import type {Job} from '../schema/types.js'
import type {JobsData, JobsFilter, OverviewData, PluginData, PluginRow} from './pages.js'

/**
 * What each page shows, read through the query modules (no SQL here), each page in one read snapshot.
 */

const BAD = new Set(['failed', 'timed_out', 'dead'])
const PAGE = 50
/** Free text looks at this many attempts per page at most (the newest that pass the other filters). */
export const TEXT_SCAN = 20_000

/** Buckets of completions: `n` labels of `prefix` characters ending now, succeeded (and skipped) against failures. */
function buckets(db: Db, now: Date, n: number, stepMs: number, prefix: 13 | 16) {
  const labels: string[] = []
  for (let i = n - 1; i >= 0; i--) labels.push(formatTs(new Date(now.getTime() - i * stepMs)).slice(0, prefix))
  const at = new Map(labels.map((l, i) => [l, i]))
  const ok = labels.map(() => 0)
  const bad = labels.map(() => 0)
  for (const r of completionBuckets(db, `${labels[0]}${prefix === 16 ? ':00.000' : ':00:00.000'}`, prefix)) {
    const i = at.get(r.bucket)
    if (i === undefined) continue
    if (BAD.has(r.status)) bad[i] = (bad[i] ?? 0) + Number(r.n)
    else ok[i] = (ok[i] ?? 0) + Number(r.n)
  }
  return {labels: labels.map((l) => (prefix === 16 ? l.slice(11) : `${l.slice(11)}h`)), ok, bad}
}

/** doctor's checks take a moment (disk, schema): one run serves the overview for a few seconds. */
const DOCTOR_TTL_MS = 5000

export class PageData {
  private doctor: {at: number; verdict: 'ok' | 'warn' | 'fail'; checks: Check[]} | null = null

  constructor(
    private readonly db: Db,
    private readonly registry: PluginRegistry | null,
    private readonly leaseMs: number = DEFAULT_ENGINE_LEASE_MS,
    private readonly stuckAfterMs: number = 10 * 60_000,
    private readonly tickMs: number = 0,
  ) {}

  /** Schedules overdue as doctor judges them (plugin and id, NUL-joined). */
  private overdue(now: Date): Set<string> {
    return new Set(lateSchedules(activeSchedules(this.db), now, this.tickMs).map((s) => `${s.plugin}\u0000${s.schedule_id}`))
  }

  overview(now = new Date()): OverviewData {
    const db = this.db
    const ov = readOverview(db, {latest: 10, schedules: 8, engineLeaseMs: this.leaseMs}, now)
    const data = db.read(() => {
      const cutoff = formatTs(new Date(now.getTime() - this.leaseMs))
      return {
        hour: buckets(db, now, 60, 60_000, 16),
        day: buckets(db, now, 24, 3_600_000, 13),
        overdue: this.overdue(now),
        engines: listLiveEngines(db)
          .reverse()
          .map((e) => ({
            host: e.host,
            pid: e.pid,
            heartbeat_at: e.heartbeat_at,
            started_at: e.started_at,
            version: e.version,
            silent: e.heartbeat_at < cutoff,
          })),
      }
    })
    const size = storeSize(db)
    return {ov, ...data, size: {fileBytes: size.fileBytes, walBytes: size.walBytes, kind: db.kind}, doctor: this.doctorVerdict(now)}
  }

  private doctorVerdict(now: Date): OverviewData['doctor'] {
    const t = now.getTime()
    if (!this.doctor || t - this.doctor.at > DOCTOR_TTL_MS) {
      const checks = runChecks(this.db, {now, stuckAfterMs: this.stuckAfterMs, engineOptional: true, engineLeaseMs: this.leaseMs, tickMs: this.tickMs})
      const verdict = checks.some((c) => c.status === 'fail') ? 'fail' : checks.some((c) => c.status === 'warn') ? 'warn' : 'ok'
      this.doctor = {at: t, verdict, checks}
    }
    return {verdict: this.doctor.verdict, checks: this.doctor.checks}
  }

  jobs(f: JobsFilter & {before?: string}): JobsData {
    const db = this.db
    const status = f.status && (JOB_STATUSES as readonly string[]).includes(f.status) ? (f.status as JobStatus) : undefined
    const before = decodeCursor(f.before)
    // A time as every command's --from/--to reads it (2026-12-01, 2026-12-01 14:30, RFC 3339), in our layout.
    const stamp = (text: string | undefined) => {
      const d = text ? parseTs(text) : null
      return d ? formatTs(d) : null
    }
    const from = stamp(f.from)
    const to = stamp(f.to)
    const problems = [
      ...(f.from && !from ? [`from: ${f.from} is not a time (2026-12-01, 2026-12-01 14:30, 2026-12-01T14:30:00Z)`] : []),
      ...(f.to && !to ? [`to: ${f.to} is not a time (2026-12-01, 2026-12-01 14:30, 2026-12-01T14:30:00Z)`] : []),
    ]
    return db.read(() => {
      const queue: Job[] =
        !status || status === 'queued' || status === 'running'
          ? (['running', 'queued'] as const)
              .filter((s) => !status || s === status)
              .flatMap((s) => listJobs(db, {status: s, plugin: f.plugin || undefined, command: f.command || undefined, limit: PAGE}))
          : []
      const search =
        status === 'queued' || status === 'running'
          ? {rows: [], truncated: false}
          : searchJobLogs(db, {
              status,
              plugin: f.plugin || undefined,
              command: f.command || undefined,
              from: from ?? undefined,
              to: to ?? undefined,
              query: f.q || undefined,
              limit: PAGE,
              before: before ?? undefined,
              scanLimit: TEXT_SCAN,
            })
      const last = search.rows[search.rows.length - 1]
      const edge = 'next' in search ? search.next : undefined
      return {
        filter: f,
        queue: before ? [] : queue,
        logs: search.rows.map((l) => ({...l, duration_ms: span(l.started_at, l.completed_at)})),
        older: edge ? encodeCursor(edge.completedAt, edge.id) : search.truncated && last ? encodeCursor(last.completed_at, last.id) : null,
        searchedTo: edge ? edge.completedAt : null,
        scanned: TEXT_SCAN,
        problems,
        statuses: JOB_STATUSES,
        plugins: this.pluginNames(),
      }
    })
  }

  job(id: string) {
    const db = this.db
    return db.read(() => {
      const r = inspectJob(db, id)
      if (!r) return null
      // The tree of its pipeline: up to the oldest ancestor still in the queue, then every descendant.
      let root = r.job
      for (let i = 0; i < 64 && root.parent_job_id; i++) {
        const up = findJob(db, root.parent_job_id)
        if (!up) break
        root = up
      }
      const rows = findJobTree(db, root.id, 200)
      const depth = new Map<string, number>([[root.id, 0]])
      for (const j of rows) if (j.parent_job_id && depth.has(j.parent_job_id)) depth.set(j.id, (depth.get(j.parent_job_id) ?? 0) + 1)
      const tree = order(rows, root.id).map((j) => ({job: j, depth: depth.get(j.id) ?? 0}))
      return {inspection: r, tree}
    })
  }

  pluginNames(): string[] {
    const db = this.db
    const names = new Set<string>(this.registry ? [...this.registry.plugins.keys()] : [])
    for (const r of countJobsByPluginAndStatus(db)) names.add(r.plugin)
    for (const b of listBreakers(db, {all: true})) names.add(b.plugin)
    for (const s of listSchedules(db, {all: true})) names.add(s.plugin)
    return [...names].sort()
  }

  plugins(): PluginRow[] {
    const db = this.db
    return db.read(() => {
      const counts = countJobsByPluginAndStatus(db)
      const breakers = listBreakers(db, {all: true})
      const schedules = listSchedules(db, {all: true})
      return this.pluginNames().map((name) => ({
        name,
        queued: counts.find((c) => c.plugin === name && c.status === 'queued')?.count ?? 0,
        running: counts.find((c) => c.plugin === name && c.status === 'running')?.count ?? 0,
        commands: this.commands(name),
        breakers: breakers.filter((b) => b.plugin === name && b.state !== 'closed').length,
        schedules: schedules.filter((s) => s.plugin === name).length,
      }))
    })
  }

  commands(plugin: string): string[] {
    return this.registry?.plugins.get(plugin)?.manifest.commands.map((c) => c.name) ?? []
  }

  plugin(name: string, enqueue: boolean): PluginData | null {
    const db = this.db
    return db.read(() => {
      const runs = recentRuns(db, name, 300)
      const data: PluginData = {
        name,
        commands: this.commands(name),
        runs,
        trend: trend(runs),
        facts: listFacts(db, {plugin: name, limit: 20}),
        state: getPluginState(db, name),
        schedules: listSchedules(db, {all: true, plugin: name}),
        breakers: listBreakers(db, {all: true}).filter((b) => b.plugin === name),
        enqueue: enqueue && this.registry?.plugins.has(name) === true,
      }
      const known = this.registry?.plugins.has(name) || runs.length || data.facts.length || data.state || data.schedules.length || data.breakers.length
      return known ? data : null
    })
  }

  breakers() {
    const db = this.db
    return db.read(() => ({rows: listBreakers(db, {all: true}), history: recentBreakerTransitions(db, 100)}))
  }

  schedules(now = new Date()) {
    const db = this.db
    return db.read(() => ({
      rows: listSchedules(db, {all: true}),
      overdue: this.overdue(now),
    }))
  }
}

/** Rows of a tree in depth-first order from the root (children by created_at, as the query gives them). */
function order(rows: Job[], rootId: string): Job[] {
  const kids = new Map<string, Job[]>()
  for (const j of rows) if (j.parent_job_id) kids.set(j.parent_job_id, [...(kids.get(j.parent_job_id) ?? []), j])
  const out: Job[] = []
  const walk = (j: Job) => {
    out.push(j)
    for (const k of kids.get(j.id) ?? []) walk(k)
  }
  const root = rows.find((j) => j.id === rootId)
  if (root) walk(root)
  return out
}

function span(from: string | null, to: string | null): number | null {
  const a = parseTs(from)?.getTime()
  const b = parseTs(to)?.getTime()
  return a !== undefined && b !== undefined ? b - a : null
}

/** p50 and p95 of durations per hour, over the hours the runs cover (oldest first, at most 24). */
function trend(runs: {completed_at: string; duration_ms: number | null}[]) {
  const by = new Map<string, number[]>()
  for (const r of runs) {
    if (r.duration_ms === null) continue
    const h = r.completed_at.slice(0, 13)
    by.set(h, [...(by.get(h) ?? []), Number(r.duration_ms)])
  }
  const hours = [...by.keys()].sort().slice(-24)
  const q = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b)
    return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? null
  }
  return {
    labels: hours.map((h) => `${h.slice(5, 10)} ${h.slice(11)}h`),
    p50: hours.map((h) => q(by.get(h) ?? [], 0.5)),
    p95: hours.map((h) => q(by.get(h) ?? [], 0.95)),
  }
}

function encodeCursor(completedAt: string, id: string): string {
  return Buffer.from(`${completedAt}|${id}`).toString('base64url')
}

function decodeCursor(c: string | undefined): {completedAt: string; id: string} | null {
  if (!c) return null
  const [completedAt, id] = Buffer.from(c, 'base64url').toString('utf8').split('|')
  return completedAt && id ? {completedAt, id} : null
}
