/**
 * A realistic large Ductile database for benchmarks (and, scaled down, for plan tests):
 * job_log over 30 days (~90% succeeded, 8% failed, 2% timed_out, 20 plugins, ~300-byte results), job_queue
 * rows of the last day with matching transitions and attempts, plugin_facts with legacy NULL-seq rows,
 * plugin_state, breakers with their transitions, schedules.
 *
 * Usage: node --import tsx bench/generate.ts [path] [--scale 1]   (scale 1 = 1,000,000 job_log rows)
 */
import {existsSync, rmSync} from 'node:fs'

import {openDb} from '../src/schema/db.js'
import {initSchema} from '../src/schema/migrations.js'
import {formatTs} from '../src/schema/time.js'
import {uuidv7} from '../src/schema/ids.js'

export interface GenerateOptions {
  scale?: number
  now?: number
  seed?: number
  onProgress?: (what: string, done: number, total: number) => void
}

export interface Generated {
  path: string
  counts: Record<string, number>
  plugins: string[]
  seconds: number
}

/** A small deterministic PRNG so every run builds the same shape. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const DAY = 86_400_000
const COMMANDS = ['poll', 'poll', 'poll', 'handle', 'sync']
const FILLER = 'x'.repeat(400)

function idAt(ms: number, r: () => number): string {
  // A v7 id for a given time: ordered like the ids the engine mints at that moment.
  void r
  return uuidv7(ms)
}

export function generate(path: string, opts: GenerateOptions = {}): Generated {
  const started = Date.now()
  const scale = opts.scale ?? 1
  const now = opts.now ?? Date.now()
  const r = rng(opts.seed ?? 42)
  const progress = opts.onProgress ?? (() => {})
  for (const s of ['', '-wal', '-shm']) if (existsSync(path + s)) rmSync(path + s)
  const db = openDb(path, {mode: 'create'})
  initSchema(db)
  const sq = db.sqlite
  sq.pragma('synchronous = OFF')
  sq.pragma('cache_size = -262144')

  const plugins = Array.from({length: 20}, (_, i) => `plugin-${String(i + 1).padStart(2, '0')}`)
  const counts: Record<string, number> = {}
  const nLog = Math.round(1_000_000 * scale)
  const nQueue = Math.round(50_000 * scale)
  const nFacts = Math.round(500_000 * scale)

  const insLog = sq.prepare(`INSERT INTO job_log (id, job_id, plugin, command, status, result, attempt, submitted_by, created_at,
    completed_at, last_error, stderr, parent_job_id, source_event_id, event_context_id, enqueued_config_snapshot_id,
    started_config_snapshot_id, started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL,NULL,NULL,?)`)
  const BATCH = 50_000
  const span = 30 * DAY
  for (let done = 0; done < nLog; ) {
    const n = Math.min(BATCH, nLog - done)
    sq.transaction(() => {
      for (let i = 0; i < n; i++) {
        const k = done + i
        const completed = now - span + Math.floor((k / nLog) * span) + Math.floor(r() * 1000)
        const durationMs = Math.floor(50 + r() ** 3 * 300_000)
        const started = completed - durationMs
        const created = started - Math.floor(r() * 5000)
        const x = r()
        const status = x < 0.9 ? 'succeeded' : x < 0.98 ? 'failed' : 'timed_out'
        const plugin = plugins[Math.floor(r() * plugins.length)]
        const command = COMMANDS[Math.floor(r() * COMMANDS.length)]
        const jobId = idAt(created, r)
        const attempt = status === 'succeeded' ? 1 : 1 + Math.floor(r() * 4)
        const result =
          status === 'timed_out'
            ? null
            : JSON.stringify({
                status: status === 'succeeded' ? 'ok' : 'error',
                result: `processed ${Math.floor(r() * 1000)} items`,
                detail: FILLER.slice(0, 200 + Math.floor(r() * 60)),
              })
        const lastError =
          status === 'succeeded' ? null : status === 'failed' ? `upstream returned HTTP ${500 + Math.floor(r() * 4)}` : 'plugin execution timed out after 60s'
        const stderr = status === 'succeeded' ? '' : `Traceback (most recent call last):\n  File "run.py", line ${Math.floor(r() * 300)}\nError: ${lastError}\n`
        insLog.run(
          `${jobId}-${attempt}`,
          jobId,
          plugin,
          command,
          status,
          result,
          attempt,
          'ductile',
          formatTs(new Date(created)),
          formatTs(new Date(completed)),
          lastError,
          stderr,
          formatTs(new Date(started)),
        )
      }
    })()
    done += n
    progress('job_log', done, nLog)
  }
  counts.job_log = nLog

  const insJob = sq.prepare(`INSERT INTO job_queue (id, plugin, command, payload, status, attempt, max_attempts, submitted_by, dedupe_key,
    created_at, started_at, completed_at, next_retry_at, last_error, parent_job_id, source_event_id, event_context_id,
    enqueued_config_snapshot_id, started_config_snapshot_id) VALUES (?,?,?,?,?,?,4,?,?,?,?,?,NULL,?,NULL,NULL,NULL,'cfg_bench','cfg_bench')`)
  const insT = sq.prepare(`INSERT INTO job_transitions (job_id, from_status, to_status, reason, created_at) VALUES (?,?,?,?,?)`)
  const insA = sq.prepare(`INSERT INTO job_attempts (job_id, attempt, created_at, engine_pid, plugin_pid, plugin_started_at) VALUES (?,?,?,NULL,NULL,NULL)`)
  let nT = 0
  let nA = 0
  for (let done = 0; done < nQueue; ) {
    const n = Math.min(BATCH, nQueue - done)
    sq.transaction(() => {
      for (let i = 0; i < n; i++) {
        const k = done + i
        const created = now - DAY + Math.floor((k / nQueue) * DAY)
        const fromEnd = nQueue - k
        const x = r()
        const status = fromEnd <= 200 ? 'queued' : fromEnd <= 220 ? 'running' : x < 0.9 ? 'succeeded' : x < 0.97 ? 'failed' : x < 0.99 ? 'timed_out' : 'dead'
        const plugin = plugins[Math.floor(r() * plugins.length)]
        const command = COMMANDS[Math.floor(r() * COMMANDS.length)]
        const id = idAt(created, r)
        const startedMs = created + Math.floor(r() * 2000)
        const completedMs = startedMs + Math.floor(50 + r() ** 3 * 300_000)
        const ts = (ms: number) => formatTs(new Date(ms))
        const startedAt = status === 'queued' ? null : ts(startedMs)
        const completedAt = status === 'queued' || status === 'running' ? null : ts(completedMs)
        const lastError = status === 'failed' || status === 'timed_out' || status === 'dead' ? 'upstream returned HTTP 503' : null
        insJob.run(
          id,
          plugin,
          command,
          '{"since":"2026-11-01"}',
          status,
          1,
          'ductile',
          `${plugin}:${command}:default`,
          ts(created),
          startedAt,
          completedAt,
          lastError,
        )
        insT.run(id, null, 'queued', null, ts(created))
        nT++
        if (startedAt) {
          insT.run(id, 'queued', 'running', null, startedAt)
          insA.run(id, 1, startedAt)
          nT++
          nA++
        }
        if (completedAt) {
          insT.run(id, 'running', status, lastError, completedAt)
          nT++
        }
      }
    })()
    done += n
    progress('job_queue', done, nQueue)
  }
  counts.job_queue = nQueue
  counts.job_transitions = nT
  counts.job_attempts = nA

  const insF = sq.prepare(`INSERT INTO plugin_facts (id, seq, plugin_name, fact_type, job_id, command, fact_json, created_at) VALUES (?,?,?,?,?,?,?,?)`)
  const legacy = Math.min(1000, Math.floor(nFacts / 100))
  for (let done = 0; done < nFacts; ) {
    const n = Math.min(BATCH, nFacts - done)
    sq.transaction(() => {
      for (let i = 0; i < n; i++) {
        const k = done + i
        const created = now - span + Math.floor((k / nFacts) * span)
        const plugin = plugins[k % plugins.length]
        const seq = k < legacy ? null : k - legacy + 1
        insF.run(
          idAt(created, r),
          seq,
          plugin,
          `${plugin}.snapshot`,
          idAt(created, r),
          'poll',
          JSON.stringify({cursor: k, items: Math.floor(r() * 100), note: FILLER.slice(0, 150)}),
          formatTs(new Date(created)),
        )
      }
    })()
    done += n
    progress('plugin_facts', done, nFacts)
  }
  counts.plugin_facts = nFacts
  sq.prepare(`UPDATE storage_sequences SET value = ? WHERE name = 'plugin_facts'`).run(Math.max(0, nFacts - legacy))

  sq.transaction(() => {
    const ts = (ms: number) => formatTs(new Date(ms))
    for (const [i, p] of plugins.entries()) {
      sq.prepare(`INSERT INTO plugin_state (plugin_name, state, updated_at) VALUES (?,?,?)`).run(
        p,
        JSON.stringify({cursor: i, items: i * 3}),
        ts(now - i * 60_000),
      )
      const state = i < 2 ? 'open' : i === 2 ? 'half_open' : 'closed'
      sq.prepare(
        `INSERT INTO circuit_breakers (plugin, command, state, failure_count, opened_at, last_failure_at, last_job_id, updated_at) VALUES (?,?,?,?,?,?,?,?)`,
      ).run(
        p,
        'poll',
        state,
        state === 'closed' ? 0 : 3,
        state === 'closed' ? null : ts(now - 600_000),
        state === 'closed' ? null : ts(now - 600_000),
        uuidv7(now),
        ts(now - 600_000),
      )
      for (let t = 0; t < 100; t++) {
        const at = now - 90 * DAY + Math.floor(((t * 20 + i) / 2000) * 90 * DAY)
        sq.prepare(
          `INSERT INTO circuit_breaker_transitions (id, plugin, command, from_state, to_state, failure_count, reason, job_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)`,
        ).run(
          uuidv7(at),
          p,
          'poll',
          t % 2 ? 'open' : 'closed',
          t % 2 ? 'closed' : 'open',
          t % 2 ? 0 : 3,
          t % 2 ? 'success' : 'failure_threshold',
          uuidv7(at),
          ts(at),
        )
      }
      sq.prepare(
        `INSERT INTO schedule_entries (plugin, schedule_id, command, status, reason, last_fired_at, last_success_job_id, last_success_at, next_run_at, updated_at, spec, interval_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
      ).run(
        p,
        'default',
        'poll',
        i === 5 ? 'paused_manual' : 'active',
        i === 5 ? 'maintenance' : null,
        ts(now - 300_000),
        uuidv7(now),
        ts(now - 290_000),
        ts(now + (i - 2) * 60_000),
        ts(now - 290_000),
        'every 15m',
        900_000,
      )
    }
  })()
  counts.circuit_breaker_transitions = plugins.length * 100
  sq.pragma('synchronous = NORMAL')
  sq.pragma('optimize')
  sq.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return {path, counts, plugins, seconds: (Date.now() - started) / 1000}
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = process.argv[2] ?? 'bench/data/bench.db'
  const scaleIdx = process.argv.indexOf('--scale')
  const scale = scaleIdx > 0 ? Number(process.argv[scaleIdx + 1]) : 1
  const {mkdirSync} = await import('node:fs')
  const {dirname} = await import('node:path')
  mkdirSync(dirname(path), {recursive: true})
  const g = generate(path, {
    scale,
    onProgress: (what, done, total) => process.stderr.isTTY && process.stderr.write(`\r${what} ${done}/${total}   `),
  })
  process.stderr.write('\n')
  console.log(JSON.stringify(g, null, 2))
}
