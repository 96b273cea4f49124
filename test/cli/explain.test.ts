import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {duration, explainBreaker, explainJob, explainSchedule} from '../../src/cli/explain.js'
import type {JobRecord} from '../../src/queries/explain.js'
import type {Job, JobLogRow, JobTransition} from '../../src/schema/types.js'

const T0 = Date.parse('2026-11-30T10:00:00Z')
const at = (ms: number) => new Date(T0 + ms).toISOString().replace('T', ' ').replace('Z', '')

function job(over: Partial<Job> = {}): Job {
  return {
    id: 'j1',
    plugin: 'weather',
    command: 'poll',
    payload: null,
    status: 'failed',
    attempt: 3,
    max_attempts: 3,
    submitted_by: 'cli',
    dedupe_key: null,
    created_at: at(0),
    started_at: at(0),
    completed_at: at(100_000),
    next_retry_at: null,
    last_error: 'exit status 75',
    parent_job_id: null,
    source_event_id: null,
    event_context_id: null,
    enqueued_config_snapshot_id: null,
    started_config_snapshot_id: null,
    ...over,
  }
}

let tid = 0
const tr = (from: Job['status'] | null, to: Job['status'], ms: number, reason: string | null = null): JobTransition => ({
  id: ++tid,
  job_id: 'j1',
  from_status: from,
  to_status: to,
  reason,
  created_at: at(ms),
})

const log = (attempt: number, status: Job['status'], start: number, end: number, error: string | null): JobLogRow =>
  ({
    id: `j1-${attempt}`,
    job_id: 'j1',
    plugin: 'weather',
    command: 'poll',
    status,
    attempt,
    started_at: at(start),
    completed_at: at(end),
    last_error: error,
  }) as JobLogRow

const record = (over: Partial<JobRecord>): JobRecord => ({
  id: 'j1',
  job: job(),
  transitions: [],
  attempts: [],
  logs: [],
  lineage: [],
  parent: null,
  snapshots: {enqueued: null, started: null},
  fired: null,
  dedupeHits: [],
  ...over,
})

describe('explain job: the story from the rows', () => {
  it('failed after 3 of 3 attempts with the same error: one sentence, the retry gaps, every row cited', () => {
    const e = explainJob(
      record({
        transitions: [
          tr(null, 'queued', 0),
          tr('queued', 'running', 10),
          tr('running', 'queued', 1_010, 'exit status 75'),
          tr('queued', 'running', 31_010),
          tr('running', 'queued', 32_010, 'exit status 75'),
          tr('queued', 'running', 92_010),
          tr('running', 'failed', 93_010, 'exit status 75'),
        ],
        logs: [
          log(1, 'failed', 10, 1_010, 'exit status 75'),
          log(2, 'failed', 31_010, 32_010, 'exit status 75'),
          log(3, 'failed', 92_010, 93_010, 'exit status 75'),
        ],
      }),
    )
    assert.equal(e.summary, 'failed after 3 of 3 attempts: exit status 75 each time; retries were 30 s and 60 s apart')
    assert.deepEqual(
      e.events.map((x) => x.kind),
      ['enqueued', 'started', 'retry', 'started', 'retry', 'started', 'failed'],
    )
    assert.match(e.events[0]?.text ?? '', /enqueued by an operator \(ductile jobs enqueue\)/)
    assert.match(e.events[2]?.text ?? '', /attempt 1 failed after 1 s: exit status 75; retried 30 s later/)
    assert.deepEqual(e.events[6]?.rows, ['job_transitions#7', 'job_log#j1-3'])
  })

  it('succeeded on the first attempt; a retry of another job says so', () => {
    const e = explainJob(
      record({
        job: job({status: 'succeeded', attempt: 1, parent_job_id: 'j0', last_error: null}),
        parent: {id: 'j0', plugin: 'weather', command: 'poll', status: 'failed'},
        transitions: [tr(null, 'queued', 0), tr('queued', 'running', 5), tr('running', 'succeeded', 1_505)],
        logs: [log(1, 'succeeded', 5, 1_505, null)],
      }),
    )
    assert.equal(e.summary, 'succeeded on the first attempt')
    assert.match(e.events[0]?.text ?? '', /as a retry of job j0 \(weather poll, failed\) \(ductile jobs retry\)/)
    assert.match(e.events[2]?.text ?? '', /attempt 1 succeeded after 1.5 s/)
  })

  it('an attempt interrupted by an engine stop, requeued at the next start, then succeeded', () => {
    const e = explainJob(
      record({
        job: job({status: 'succeeded', attempt: 2, submitted_by: 'main-engine', last_error: null}),
        transitions: [
          tr(null, 'queued', 0),
          tr('queued', 'running', 5),
          tr('running', 'queued', 60_000, 'interrupted: the engine stopped while this attempt ran (recovered at engine start)'),
          tr('queued', 'running', 60_010),
          tr('running', 'succeeded', 61_010),
        ],
      }),
    )
    assert.equal(e.summary, 'succeeded on attempt 2 of 3; an engine stop interrupted an attempt, and the next start requeued it')
    assert.equal(e.events.find((x) => x.kind === 'recovered')?.rows[0], `job_transitions#${tid - 2}`)
    assert.match(e.events[0]?.text ?? '', /by the scheduler of engine "main-engine"/)
  })

  it('a pipeline step names its pipeline, step, upstream job and baggage; a cancel is told as such', () => {
    const step = explainJob(
      record({
        job: job({status: 'dead', submitted_by: 'route', attempt: 1, last_error: 'cancelled by operator', parent_job_id: 'up'}),
        parent: {id: 'up', plugin: 'sensor', command: 'poll', status: 'succeeded'},
        lineage: [
          {id: 'ctx1', parent_id: null, pipeline_name: 'alerts', step_id: 'notify', accumulated_json: '{"city":"Hobart","celsius":31}', created_at: at(0)},
        ],
        transitions: [tr(null, 'queued', 0), tr('queued', 'dead', 2_000, 'cancelled by operator')],
      }),
    )
    assert.match(step.events[0]?.text ?? '', /step notify of pipeline alerts, by an event of job up \(sensor poll, succeeded\); baggage: city, celsius/)
    assert.ok(step.events[0]?.rows.includes('event_context#ctx1'))
    assert.equal(step.summary, 'dead: cancelled before it ran again: cancelled by operator')
  })

  it('a job pruned from the queue and without transitions: its attempts as job_log recorded them', () => {
    const e = explainJob(
      record({
        job: null,
        logs: [
          {...log(1, 'failed', 0, 1_000, 'exit status 2'), submitted_by: 'cli'},
          {...log(2, 'succeeded', 31_000, 32_000, null), submitted_by: 'cli'},
        ],
      }),
    )
    assert.equal(e.status, 'succeeded')
    assert.equal(e.summary, 'succeeded on attempt 2 after 1 failed: exit status 2; retries were 30 s apart')
    assert.deepEqual(e.events[0]?.rows, ['job_log#j1-1'], 'no queue row is cited')
    assert.match(e.events[1]?.text ?? '', /attempt 1 failed after 1 s: exit status 2; retried 30 s later/)
  })

  it('a hook job names the job whose end started it; a timeout is told with its limit and kill', () => {
    const e = explainJob(
      record({
        job: job({
          submitted_by: 'hook',
          parent_job_id: 'up',
          status: 'timed_out',
          attempt: 1,
          max_attempts: 1,
          last_error: 'timed out after 60s (SIGTERM, then SIGKILL after 5s)',
        }),
        parent: {id: 'up', plugin: 'backup', command: 'poll', status: 'succeeded'},
        transitions: [
          tr(null, 'queued', 0),
          tr('queued', 'running', 5),
          tr('running', 'timed_out', 65_005, 'timed out after 60s (SIGTERM, then SIGKILL after 5s)'),
        ],
        logs: [log(1, 'timed_out', 5, 65_005, 'timed out after 60s (SIGTERM, then SIGKILL after 5s)')],
      }),
    )
    assert.match(e.events[0]?.text ?? '', /^enqueued by a lifecycle hook when job up \(backup poll, succeeded\) ended$/)
    assert.match(e.events[2]?.text ?? '', /^attempt 1 timed out after 65 s: timed out after 60s \(SIGTERM, then SIGKILL after 5s\)$/)
    assert.equal(e.summary, 'timed out after 1 of 1 attempts: timed out after 60s (SIGTERM, then SIGKILL after 5s)')
  })

  it('enqueued under one config and started under another: it says the config changed in between', () => {
    const snap = (id: string, hash: string) => ({id, loaded_at: at(0), reason: 'startup', config_hash: hash, sanitized_config: '{}'})
    const e = explainJob(
      record({
        job: job({status: 'succeeded', attempt: 1, last_error: null}),
        snapshots: {enqueued: snap('cfg_a', 'h1'), started: snap('cfg_b', 'h2')},
        transitions: [tr(null, 'queued', 0), tr('queued', 'running', 5), tr('running', 'succeeded', 1_000)],
      }),
    )
    const config = e.events.filter((x) => x.kind === 'config').map((x) => x.text)
    assert.match(config[0] ?? '', /^enqueued under config snapshot cfg_a/)
    assert.match(config[1] ?? '', /^started under a different config snapshot cfg_b \(startup, .+\): the config changed in between$/)
  })

  it('durations read like an incident note', () => {
    assert.deepEqual([250, 1500, 30_000, 90_000, 250_000, 7_500_000].map(duration), ['250 ms', '1.5 s', '30 s', '90 s', '4 min 10 s', '2 h 5 min'])
  })
})

describe('explain breaker: its state from the rows', () => {
  const base = {plugin: 'weather', command: 'poll', transitions: [], counted: [], snapshot: null}
  const defaults = {threshold: 3, reset_after_ms: 30 * 60_000}
  const breaker = (over: object) => ({
    plugin: 'weather',
    command: 'poll',
    state: 'open',
    failure_count: 3,
    opened_at: '2026-11-30 10:00:00.000',
    last_failure_at: '2026-11-30 10:00:00.000',
    last_job_id: 'j3',
    updated_at: '2026-11-30 10:00:00.000',
    ...over,
  })

  it('open with its cooldown passed: the next tick probes; the defaults when no snapshot says otherwise', () => {
    const e = explainBreaker({...base, breaker: breaker({})} as never, defaults, new Date('2026-11-30T11:00:00Z'))
    assert.equal(e.probe_after, '2026-11-30 10:30:00.000')
    assert.match(
      e.summary,
      /^open since 2026-11-30 10:00:00.000: 3 failures in a row reached the threshold of 3 \(from the default\); its cooldown of 30 min has passed: the next tick lets one probe through$/,
    )
  })

  it('the threshold and cooldown of the config snapshot in force', () => {
    const snapshot = {
      id: 'cfg_1',
      loaded_at: '',
      reason: 'startup',
      config_hash: 'h',
      sanitized_config: '{"plugins":{"weather":{"circuit_breaker":{"threshold":5,"reset_after":"2m"}}}}',
    }
    const e = explainBreaker({...base, breaker: breaker({failure_count: 5}), snapshot} as never, defaults, new Date('2026-11-30T10:01:00Z'))
    assert.deepEqual([e.threshold, e.reset_after_ms], [5, 120_000])
    assert.match(e.summary, /threshold of 5 \(from config snapshot cfg_1\); one probe may run after 2026-11-30 10:02:00.000 \(cooldown 2 min\)$/)
  })
})

describe('explain schedule: why it has not fired since', () => {
  const entry = (over: object) => ({
    plugin: 'weather',
    schedule_id: 'hourly',
    command: 'poll',
    status: 'active',
    reason: null,
    last_fired_at: '2026-11-30 09:00:00.000',
    last_success_job_id: 'j1',
    last_success_at: '2026-11-30 09:00:02.000',
    next_run_at: '2026-11-30 10:00:02.000',
    updated_at: '2026-11-30 09:00:00.000',
    spec: 'every 1h',
    interval_ms: 3_600_000,
    ...over,
  })
  const decision = (id: number, decision: string, reason: string | null, at: string, job: string | null = null) => ({
    id,
    plugin: 'weather',
    schedule_id: 'hourly',
    decision,
    reason,
    detail: null,
    slot: null,
    job_id: job,
    created_at: at,
  })

  it('skipped outside its window since a time after its last fire; the next run', () => {
    const e = explainSchedule(
      {
        entry: entry({next_run_at: '2026-11-30 10:00:02.000'}),
        decisions: [decision(1, 'fired', null, '2026-11-30 09:00:00.000', 'j1'), decision(2, 'skipped', 'outside_time_window', '2026-11-30 10:00:05.000')],
        lastJob: {id: 'j1', status: 'succeeded', last_error: null},
        breaker: null,
      } as never,
      new Date('2026-11-30T09:30:00Z'),
    )
    assert.equal(
      e.summary,
      'last fired at 2026-11-30 09:00:00.000 (job j1, succeeded); not fired since 2026-11-30 10:00:05.000: outside its only_between window; next run at 2026-11-30 10:00:02.000',
    )
    assert.deepEqual(
      e.events.map((x) => x.rows[0]),
      ['schedule_decisions#1', 'schedule_decisions#2'],
    )
  })

  it('paused by an operator, with the reason; never fired', () => {
    const e = explainSchedule({
      entry: entry({status: 'paused_manual', reason: 'vendor outage', last_fired_at: null}),
      decisions: [],
      lastJob: null,
      breaker: null,
    } as never)
    assert.equal(e.summary, 'paused by an operator (ductile schedules pause) since 2026-11-30 09:00:00.000: vendor outage; never fired')
  })
})

describe('explain job: the schedule, the slot and the planned backoff', () => {
  it("a scheduler's job names its schedule and slot; a retry names the backoff its config planned", () => {
    const snap = {
      id: 'cfg_1',
      loaded_at: at(0),
      reason: 'startup',
      config_hash: 'h',
      sanitized_config: '{"plugins":{"weather":{"retry":{"backoff_base":"2s"}}}}',
    }
    const e = explainJob(
      record({
        job: job({submitted_by: 'main', status: 'succeeded', attempt: 2, max_attempts: 3, last_error: null}),
        fired: {id: 7, schedule_id: 'every-15m', slot: at(0), decision: 'fired'},
        snapshots: {enqueued: snap, started: snap},
        transitions: [
          tr(null, 'queued', 0),
          tr('queued', 'running', 5),
          tr('running', 'queued', 1_005, 'exit status 75'),
          tr('queued', 'running', 3_500),
          tr('running', 'succeeded', 4_000),
        ],
      }),
    )
    assert.match(e.events[0]?.text ?? '', /^enqueued by schedule every-15m of engine "main", for the run due at 2026-11-30 10:00:00.000$/)
    assert.ok(e.events[0]?.rows.includes('schedule_decisions#7'))
    assert.match(
      e.events.find((x) => x.kind === 'retry')?.text ?? '',
      /retried 2.5 s later \(planned: backoff 2 s × 2\^0 = 2 s, plus up to 500 ms of jitter; retry.backoff_base from config snapshot cfg_1\)$/,
    )
    assert.equal(e.summary, 'succeeded on attempt 2 of 3 after 1 failed: exit status 75; retries were 2.5 s apart')
  })

  it('an enqueue deduplicated against it is part of its story', () => {
    const e = explainJob(
      record({
        job: job({submitted_by: 'main', status: 'succeeded', attempt: 1, last_error: null}),
        dedupeHits: [
          {
            id: 9,
            job_id: 'j1',
            plugin: 'weather',
            command: 'poll',
            dedupe_key: 'reading-42',
            submitted_by: 'cli',
            reason: 'job deduplicated for key "reading-42" (existing job j1 succeeded within the dedupe window)',
            created_at: at(5_000),
          },
        ],
        transitions: [tr(null, 'queued', 0), tr('queued', 'running', 5), tr('running', 'succeeded', 1_000)],
      }),
    )
    const hit = e.events.find((x) => x.rows.includes('dedupe_hits#9'))
    assert.equal(hit?.text, 'an enqueue by an operator was deduplicated against this job (dedupe key reading-42): no new job')
    assert.equal(e.events[e.events.length - 1], hit, 'in time order')
  })
})
