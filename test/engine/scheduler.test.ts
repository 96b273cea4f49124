// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {loadConfig} from '../../src/config/load.js'
import {Logger} from '../../src/engine/log.js'
import {Scheduler} from '../../src/engine/scheduler.js'
import {discoverPlugins} from '../../src/plugins/discover.js'
import {resetBreaker} from '../../src/queries/breakers.js'
import {enqueueJob} from '../../src/queries/queue.js'
import {changeScheduleStatus} from '../../src/queries/schedules.js'
import type {Db} from '../../src/schema/db.js'
import {formatTs} from '../../src/schema/time.js'
import {rows, testEnv} from '../helpers/engine.js'
import {openStore} from '../../src/schema/open.js'

const MIN = 60_000
const ts = (ms: number) => formatTs(new Date(ms))

/** A scheduler on a fake clock; jobs are completed by hand (the engine is tested elsewhere). */
function harness(
  yaml: string,
  start = Date.UTC(2026, 10, 27, 12, 0, 0),
  opts: {random?: () => number; env?: ReturnType<typeof testEnv>; duringEnqueue?: () => void} = {},
) {
  const env = opts.env ?? testEnv(yaml)
  if (opts.env) writeFileSync(env.configPath, writeConfig(env, yaml))
  let now = start
  const logs: string[] = []
  const make = () => {
    const config = loadConfig(env.configPath, {throwOnError: false})
    return new Scheduler({
      db: env.db,
      config,
      registry: discoverPlugins(config),
      clock: () => new Date(now),
      logger: new Logger('text', 'debug', (l) => logs.push(l)),
      random: opts.random,
      enqueue: (i) => {
        opts.duringEnqueue?.()
        return enqueueJob(env.db, {...i, now: ts(now), configSnapshotId: null})
      },
    })
  }
  let scheduler = make()
  return {
    env,
    logs,
    get now() {
      return now
    },
    set(ms: number) {
      now = ms
    },
    advance(ms: number) {
      now += ms
    },
    tick() {
      return scheduler.tick()
    },
    restart() {
      scheduler = make()
    },
    /** Run and finish a job as the engine would (status and completed_at at the current time). */
    complete(id: string, status: 'succeeded' | 'failed' | 'timed_out') {
      env.db.query(`UPDATE job_queue SET status = ?, started_at = ?, completed_at = ? WHERE id = ?`, [status, ts(now), ts(now), id])
    },
    entry(plugin: string, id = 'default') {
      return rows(env.db, 'SELECT * FROM schedule_entries WHERE plugin = ? AND schedule_id = ?', plugin, id)[0]
    },
    jobs() {
      return rows(env.db, 'SELECT * FROM job_queue ORDER BY created_at, id')
    },
  }
}

/** Replace the plugins section of an environment's config (the base part has no plugins key). */
function writeConfig(env: ReturnType<typeof testEnv>, yaml: string): string {
  const full = readFileSync(env.configPath, 'utf8')
  const cut = full.indexOf('plugins:\n')
  return (cut === -1 ? full : full.slice(0, cut)) + yaml
}

const fired = <T extends {action: string}>(d: T[]) => d.filter((x) => x.action === 'fired')
const reasonOf = (d: {action: string; reason?: string; plugin: string}[], plugin = 'behave') => d.find((x) => x.plugin === plugin)?.reason

describe('scheduler: every', () => {
  it('fires on the first tick, then not before completion + interval + jitter (bounds)', () => {
    for (const [r, extra] of [
      [0, 0],
      [0.999, 59_940],
    ] as const) {
      const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 10m, jitter: 1m}\n`, undefined, {random: () => r})
      const d1 = h.tick()
      assert.equal(fired(d1).length, 1)
      const job = h.jobs()[0]
      assert.deepEqual([job.submitted_by, job.dedupe_key, job.command], ['test-engine', 'behave:poll:default', 'poll'])
      h.advance(30_000)
      assert.equal(reasonOf(h.tick()), 'already_running')
      h.complete(job.id, 'succeeded')
      const doneAt = h.now
      h.advance(1000)
      assert.equal(reasonOf(h.tick()), 'not_due')
      const e = h.entry('behave')
      assert.equal(e.last_success_job_id, job.id)
      assert.equal(e.last_success_at, ts(doneAt))
      assert.equal(e.next_run_at, ts(doneAt + 10 * MIN + extra))
      assert.equal(e.spec, 'every 10m')
      h.set(doneAt + 10 * MIN + extra - 1)
      assert.equal(reasonOf(h.tick()), 'not_due')
      h.set(doneAt + 10 * MIN + extra)
      assert.equal(fired(h.tick()).length, 1)
    }
  })

  it('after a failure the schedule is due again at the next tick', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: hourly}\n`)
    h.tick()
    h.complete(h.jobs()[0].id, 'failed')
    h.advance(MIN)
    assert.equal(fired(h.tick()).length, 1)
    assert.equal(h.jobs().length, 2)
  })
})

describe('scheduler: cron', () => {
  it('fires once a day across both DST changes in Europe/Berlin', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {cron: "30 2 * * *", timezone: Europe/Berlin}\n`, Date.UTC(2026, 2, 27, 12, 0))
    const firedAt: string[] = []
    const run = (from: number, to: number) => {
      for (h.set(from); h.now < to; h.advance(MIN)) {
        for (const d of fired(h.tick())) {
          firedAt.push(new Date(h.now).toISOString())
          h.complete(d.jobId!, 'succeeded')
        }
      }
    }
    run(Date.UTC(2026, 2, 27, 12, 0), Date.UTC(2026, 2, 30, 12, 0))
    // 02:30 CET = 01:30Z; on 29 March 02:30 does not exist (clocks jump to 03:00): it runs once, at 03:30 CEST.
    assert.deepEqual(firedAt, ['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'])
  })

  it('fires once when the local time repeats (autumn, Europe/Berlin)', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {cron: "30 2 * * *", timezone: Europe/Berlin}\n`, Date.UTC(2026, 9, 24, 12, 0))
    const firedAt: string[] = []
    for (; h.now < Date.UTC(2026, 9, 26, 12, 0); h.advance(MIN)) {
      for (const d of fired(h.tick())) {
        firedAt.push(new Date(h.now).toISOString())
        h.complete(d.jobId!, 'succeeded')
      }
    }
    // On 25 October 02:30 happens twice (00:30Z in summer time, 01:30Z in winter time): the job runs once
    // (croner resolves the ambiguous time to the winter one).
    assert.deepEqual(
      h.logs.filter((l) => l.includes('schedule failed')),
      [],
      'no tick failed',
    )
    assert.deepEqual(firedAt, ['2026-10-25T01:30:00.000Z', '2026-10-26T01:30:00.000Z'])
  })
})

describe('scheduler: one-shots', () => {
  it('at and after fire once, become exhausted, and never fire again, even after a restart', () => {
    const start = Date.UTC(2026, 10, 27, 12, 0)
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {id: once, at: "2026-11-27T13:00:00Z"}\n      - {id: later, after: 30m}\n`, start)
    const d0 = h.tick()
    assert.deepEqual(
      d0.map((d) => d.reason),
      ['not_due', 'not_due'],
    )
    assert.equal(h.entry('behave', 'once').next_run_at, '2026-11-27 13:00:00.000')
    assert.equal(h.entry('behave', 'later').next_run_at, ts(start + 30 * MIN))
    h.advance(30 * MIN)
    assert.deepEqual(
      h.tick().map((d) => d.action),
      ['skipped', 'fired'],
    )
    h.complete(h.jobs()[0].id, 'succeeded')
    h.advance(30 * MIN)
    assert.deepEqual(
      h.tick().map((d) => d.action),
      ['fired', 'skipped'],
    )
    for (const id of ['once', 'later']) {
      const e = h.entry('behave', id)
      assert.deepEqual([e.status, e.reason, e.next_run_at], ['exhausted', 'one_shot_exhausted', null])
    }
    h.restart()
    h.advance(24 * 60 * MIN)
    assert.deepEqual(
      h.tick().map((d) => d.reason),
      ['schedule_exhausted', 'schedule_exhausted'],
    )
    assert.equal(h.jobs().length, 2)
  })
})

describe('scheduler: catch-up after downtime', () => {
  for (const [policy, downMin, expected] of [
    ['run_all', 35, 3],
    ['run_once', 35, 1],
    ['run_all', 2000, 100],
    ['skip', 35, 0],
  ] as const) {
    it(`${policy} after ${downMin} minutes of a 10m schedule enqueues ${expected}`, () => {
      const start = Date.UTC(2026, 10, 27, 12, 0)
      const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 10m, catch_up: ${policy}}\n`, start)
      env_seed(h, start - downMin * MIN)
      const d = h.tick()
      const catchUps = d.filter((x) => x.action === 'catch_up')
      assert.equal(catchUps.length, expected)
      const keys = h
        .jobs()
        .map((j) => j.dedupe_key)
        .filter((k) => k.includes(':catchup:'))
      assert.equal(keys.length, expected)
      if (expected) assert.equal(keys[0], `behave:poll:default:catchup:${new Date(start - downMin * MIN + 10 * MIN).toISOString().replace('.000Z', 'Z')}`)
      // Each policy leaves its decision as a fact: the catch-up runs, or the runs it let go.
      const facts = rows(h.env.db, `SELECT decision, reason, detail FROM schedule_decisions WHERE plugin = 'behave' ORDER BY id`)
      if (policy === 'skip')
        assert.deepEqual(facts[0], {
          decision: 'skipped',
          reason: 'missed_while_stopped',
          detail: '3 runs due since its last fire were not caught up at engine start (catch_up: skip)',
        })
      else assert.equal(facts.filter((f) => f.decision === 'catch_up').length, expected)
    })
  }
})

function env_seed(h: ReturnType<typeof harness>, lastFired: number) {
  h.env.db.query(
    `INSERT INTO schedule_entries (plugin, schedule_id, command, status, last_fired_at, next_run_at, updated_at) VALUES ('behave', 'default', 'poll', 'active', ?, ?, ?)`,
    [ts(lastFired), ts(lastFired + 10 * MIN), ts(lastFired)],
  )
}

describe('scheduler: if_running', () => {
  it('skip: already_running while a job is outstanding', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 1m, if_running: skip}\n`)
    h.tick()
    h.advance(2 * MIN)
    assert.equal(reasonOf(h.tick()), 'already_running')
    assert.equal(h.jobs().length, 1)
  })

  it('queue: up to max_outstanding_polls, then outstanding_limit', () => {
    const h = harness(`plugins:\n  behave:\n    max_outstanding_polls: 2\n    schedules:\n      - {every: 1m, if_running: queue}\n`)
    h.tick()
    h.advance(2 * MIN)
    assert.equal(fired(h.tick()).length, 1)
    h.advance(2 * MIN)
    assert.equal(reasonOf(h.tick()), 'outstanding_limit')
    assert.equal(h.jobs().length, 2)
  })

  it('cancel: outstanding jobs become dead with the reason, and a new one is enqueued', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 1m, if_running: cancel}\n`)
    h.tick()
    const first = h.jobs()[0]
    h.advance(2 * MIN)
    assert.equal(fired(h.tick()).length, 1)
    const jobs = h.jobs()
    assert.equal(jobs[0].status, 'dead')
    assert.equal(jobs[0].last_error, 'cancelled by scheduler (if_running=cancel)')
    assert.deepEqual(rows(h.env.db, 'SELECT from_status, to_status, reason FROM job_transitions WHERE job_id = ? ORDER BY id', first.id).pop(), {
      from_status: 'queued',
      to_status: 'dead',
      reason: 'cancelled by scheduler (if_running=cancel)',
    })
    assert.equal(jobs[1].status, 'queued')
  })
})

describe('scheduler: constraints', () => {
  it('only_between across midnight, in the schedule zone', () => {
    const h = harness(
      `plugins:\n  behave:\n    schedules:\n      - {every: 1m, only_between: "22:00-02:00", timezone: America/New_York}\n`,
      Date.UTC(2026, 10, 27, 4, 0),
    )
    // 04:00Z = 23:00 in New York (EST, UTC-5): inside.
    assert.equal(fired(h.tick()).length, 1)
    h.complete(h.jobs()[0].id, 'succeeded')
    h.set(Date.UTC(2026, 10, 27, 7, 30)) // 02:30 New York: outside (end is exclusive)
    assert.equal(reasonOf(h.tick()), 'outside_time_window')
    h.set(Date.UTC(2026, 10, 27, 6, 59)) // 01:59: inside
    assert.equal(fired(h.tick()).length, 1)
  })

  it('not_on days', () => {
    // 2026-11-28 is a Saturday.
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 1m, not_on: [sat, 0]}\n`, Date.UTC(2026, 10, 28, 12, 0))
    assert.equal(reasonOf(h.tick()), 'outside_day_constraint')
    h.set(Date.UTC(2026, 10, 30, 12, 0)) // Monday
    assert.equal(fired(h.tick()).length, 1)
  })
})

describe('scheduler: invalid schedules', () => {
  it('a bad cron and a command the manifest lacks are paused_invalid, and recover when fixed', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {id: c, cron: "99 * * * *"}\n      - {id: m, every: 1m, command: frobnicate}\n`)
    const d = h.tick()
    assert.deepEqual(
      d.map((x) => x.reason),
      ['invalid_schedule_config', 'command_not_supported'],
    )
    assert.deepEqual([h.entry('behave', 'c').status, h.entry('behave', 'c').reason], ['paused_invalid', 'invalid_schedule_config'])
    assert.deepEqual([h.entry('behave', 'm').status, h.entry('behave', 'm').reason], ['paused_invalid', 'command_not_supported'])
    assert.equal(h.jobs().length, 0)
    const fixed = harness(`plugins:\n  behave:\n    schedules:\n      - {id: c, cron: "*/5 * * * *"}\n      - {id: m, every: 1m, command: sync}\n`, h.now, {
      env: h.env,
    })
    fixed.tick()
    assert.deepEqual([fixed.entry('behave', 'c').status, fixed.entry('behave', 'c').reason], ['active', null])
    assert.deepEqual([fixed.entry('behave', 'm').status, fixed.entry('behave', 'm').command], ['active', 'sync'])
  })

  it('a manual pause holds until resumed, and is seen on the next tick', () => {
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 1m}\n`)
    h.tick()
    h.complete(h.jobs()[0].id, 'succeeded')
    h.env.db.query(`UPDATE schedule_entries SET status = 'paused_manual', reason = 'maintenance' WHERE plugin = 'behave'`)
    h.advance(5 * MIN)
    assert.equal(reasonOf(h.tick()), 'schedule_paused_manual')
    h.restart()
    assert.equal(reasonOf(h.tick()), 'schedule_paused_manual')
    h.env.db.query(`UPDATE schedule_entries SET status = 'active', reason = NULL WHERE plugin = 'behave'`)
    assert.equal(fired(h.tick()).length, 1)
  })

  it('an operator pause or breaker reset that comes while a tick decides waits for it, and is never overwritten', () => {
    // The CLI is another connection; here it writes in the middle of the tick's decision (between reading the
    // schedule row and writing it back). It must wait for the tick, not slip in and be erased by the write-back.
    let operator: Db | undefined
    const attempts: {what: string; error?: string}[] = []
    const h = harness(`plugins:\n  behave:\n    schedules:\n      - {every: 1m}\n`, undefined, {
      duringEnqueue: () => {
        operator ??= openStore(h.env.dbPath, {mode: 'write', busyTimeoutMs: 0})
        const writes = {
          pause: () => changeScheduleStatus(operator!, {plugin: 'behave', to: 'paused_manual', reason: 'maintenance', now: ts(h.now)}),
          reset: () => resetBreaker(operator!, 'behave', 'poll', ts(h.now)),
        }
        for (const [what, write] of Object.entries(writes)) {
          try {
            write()
            attempts.push({what})
          } catch (e) {
            attempts.push({what, error: (e as Error).message})
          }
        }
      },
    })
    h.tick()
    h.complete(h.jobs()[0].id, 'succeeded')
    h.advance(2 * MIN)
    assert.equal(fired(h.tick()).length, 1)
    operator?.close()
    assert.equal(attempts.length, 4, 'the operator wrote during both firings')
    for (const a of attempts) {
      if (a.what === 'pause' && a.error === undefined) assert.equal(h.entry('behave').status, 'paused_manual', 'a pause that reported success holds')
      assert.match(a.error ?? 'it got in', /locked|busy|lock timeout/i, `${a.what} waited for the tick's transaction`)
    }
    // After the tick the same pause lands, and holds.
    changeScheduleStatus(h.env.db, {plugin: 'behave', to: 'paused_manual', reason: 'maintenance', now: ts(h.now)})
    h.advance(5 * MIN)
    assert.equal(reasonOf(h.tick()), 'schedule_paused_manual')
  })
})

describe('circuit breakers', () => {
  const CFG = `plugins:\n  behave:\n    circuit_breaker: {threshold: 3, reset_after: 10m}\n    schedules:\n      - {every: 1m}\n`
  const history = (h: ReturnType<typeof harness>) =>
    rows(
      h.env.db,
      `SELECT from_state, to_state, reason, failure_count, job_id FROM circuit_breaker_transitions WHERE plugin = 'behave' ORDER BY created_at, id`,
    )

  function failThrice(h: ReturnType<typeof harness>) {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const d = fired(h.tick())
      assert.equal(d.length, 1, `attempt ${i + 1} fired`)
      ids.push(d[0].jobId!)
      h.advance(10_000)
      h.complete(d[0].jobId!, 'failed')
      h.advance(50_000)
    }
    return ids
  }

  it('three failures open it; nothing is enqueued while open; one probe after the cooldown; success closes', () => {
    const h = harness(CFG)
    const ids = failThrice(h)
    assert.equal(reasonOf(h.tick()), 'circuit_open')
    const b = rows(h.env.db, `SELECT * FROM circuit_breakers WHERE plugin = 'behave'`)[0]
    assert.deepEqual([b.state, b.failure_count, b.last_job_id], ['open', 3, ids[2]])
    assert.deepEqual(history(h), [{from_state: 'closed', to_state: 'open', reason: 'failure_threshold', failure_count: 3, job_id: ids[2]}])
    for (let i = 0; i < 8; i++) {
      h.advance(MIN)
      assert.equal(reasonOf(h.tick()), 'circuit_open')
    }
    assert.equal(h.jobs().length, 3, 'no job while open')
    h.advance(2 * MIN)
    const probe = fired(h.tick())
    assert.equal(probe.length, 1, 'exactly one probe')
    assert.equal(history(h)[1].reason, 'cooldown_elapsed')
    assert.equal(history(h)[1].to_state, 'half_open')
    h.advance(MIN)
    assert.equal(reasonOf(h.tick()), 'circuit_half_open_probe_running')
    h.complete(probe[0].jobId!, 'succeeded')
    h.advance(MIN)
    h.tick()
    assert.deepEqual(
      history(h).map((t) => `${t.from_state}→${t.to_state} ${t.reason}`),
      ['closed→open failure_threshold', 'open→half_open cooldown_elapsed', 'half_open→closed success'],
    )
    const closed = rows(h.env.db, `SELECT * FROM circuit_breakers WHERE plugin = 'behave'`)[0]
    assert.deepEqual([closed.state, closed.failure_count, closed.opened_at], ['closed', 0, null])
  })

  it('a failed probe reopens it; a manual reset closes it and the next completion is counted afresh', () => {
    const h = harness(CFG)
    failThrice(h)
    h.advance(11 * MIN)
    const probe = fired(h.tick())[0]
    h.complete(probe.jobId!, 'failed')
    h.advance(MIN)
    assert.equal(reasonOf(h.tick()), 'circuit_open')
    assert.deepEqual(
      history(h).map((t) => `${t.from_state}→${t.to_state} ${t.reason}`),
      ['closed→open failure_threshold', 'open→half_open cooldown_elapsed', 'half_open→open failure_threshold'],
    )
    resetBreaker(h.env.db, 'behave', 'poll', ts(h.now))
    const t = history(h).pop()!
    assert.deepEqual(t, {from_state: 'open', to_state: 'closed', reason: 'manual_reset', failure_count: 0, job_id: null})
    const b = rows(h.env.db, `SELECT * FROM circuit_breakers WHERE plugin = 'behave'`)[0]
    assert.deepEqual([b.state, b.failure_count, b.last_job_id, b.opened_at], ['closed', 0, null, null])
    h.advance(MIN)
    const d = h.tick()
    assert.equal(fired(d).length, 1, 'fires again after the reset')
    assert.equal(
      rows(h.env.db, `SELECT failure_count FROM circuit_breakers WHERE plugin = 'behave'`)[0].failure_count,
      1,
      'the probe failure before the reset is counted once',
    )
  })

  it('only scheduler-submitted completions count', () => {
    const h = harness(CFG)
    for (let i = 0; i < 5; i++) {
      const r = enqueueJob(h.env.db, {plugin: 'behave', command: 'poll', payload: {}, submittedBy: 'cli', maxAttempts: 1, dedupeTtlMs: 0, now: ts(h.now)})
      if (r.status === 'enqueued') h.complete(r.job.id, 'failed')
      h.advance(1000)
    }
    h.tick()
    assert.equal(rows(h.env.db, `SELECT * FROM circuit_breakers`).length, 0)
  })
})

describe("the scheduler's decisions as facts (schedule_decisions)", () => {
  const CFG = `plugins:\n  behave:\n    circuit_breaker: {threshold: 3, reset_after: 10m}\n    schedules:\n      - {every: 1m}\n`
  const decisions = (h: ReturnType<typeof harness>) =>
    rows(h.env.db, `SELECT decision, reason, job_id, slot FROM schedule_decisions WHERE plugin = 'behave' ORDER BY id`).map(
      (d) => `${d.decision}${d.reason ? ` ${d.reason}` : ''}`,
    )

  it('a row per fire and per change of reason; none for idle ticks, none for the same reason again', () => {
    const h = harness(CFG)
    for (let i = 0; i < 3; i++) {
      const d = fired(h.tick())[0]
      assert.ok(d, `fire ${i + 1}`)
      for (let t = 0; t < 5; t++) {
        h.advance(10_000)
        h.tick() // not due, or already running: idle ticks
      }
      h.complete(d.jobId!, 'failed')
      h.advance(10_000)
    }
    for (let i = 0; i < 6; i++) {
      h.advance(MIN)
      assert.equal(reasonOf(h.tick()), 'circuit_open')
    }
    assert.deepEqual(decisions(h), [
      'fired',
      'skipped already_running',
      'fired',
      'skipped already_running',
      'fired',
      'skipped already_running',
      'skipped circuit_open',
    ])
    const fires = rows(h.env.db, `SELECT job_id, slot FROM schedule_decisions WHERE decision = 'fired' ORDER BY id`)
    assert.deepEqual(
      fires.map((f) => f.job_id),
      h.jobs().map((j) => j.id),
    )
    // A restarted scheduler reads the last decision and does not repeat it. (The runs it did not fire while
    // the breaker was open count as missed at a start: catch_up: skip says so, once, and the open breaker,
    // now a change again, is recorded after it.)
    h.restart()
    h.advance(MIN)
    assert.deepEqual(
      h.tick().map((d) => d.reason),
      ['missed_while_stopped', 'circuit_open'],
    )
    assert.deepEqual(decisions(h).slice(7), ['skipped missed_while_stopped', 'skipped circuit_open'])
    h.advance(MIN)
    h.tick()
    assert.equal(decisions(h).length, 9, 'the same reason again is not recorded')
  })
})
