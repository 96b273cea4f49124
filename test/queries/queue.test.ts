import assert from 'node:assert/strict'
// stores: sqlite, postgres
import {describe, it} from 'node:test'

import {
  cancelQueuedJob,
  claimNextJob,
  completeAttempt,
  enqueueJob,
  findQueueJob,
  type NewJobInput,
  recoverRunningJobs,
  retryAttempt,
} from '../../src/queries/queue.js'
import {listAttempts, listTransitions} from '../../src/queries/jobs.js'
import {freshDb} from '../helpers/db.js'

/** The queue's writes, in process: no engine, no plugin, no CLI. */

const T0 = '2026-11-27 10:00:00.000'
const T1 = '2026-11-27 10:00:01.000'
const T2 = '2026-11-27 10:00:02.000'
const job = (o: Partial<NewJobInput> = {}): NewJobInput => ({
  plugin: 'p',
  command: 'poll',
  payload: {},
  submittedBy: 'test',
  maxAttempts: 2,
  dedupeTtlMs: 0,
  now: T0,
  ...o,
})
const claim = (db: ReturnType<typeof freshDb>['db'], now = T1, exclude: string[] = []) =>
  claimNextJob(db, {now, excludePlugins: new Set(exclude), snapshotId: null, enginePid: process.pid, engineId: null})
const record = (status: 'succeeded' | 'failed', now = T2) => ({status, result: null, lastError: status === 'failed' ? 'boom' : null, stderr: null, now})

describe('queue: enqueue, claim, outcome, recovery', () => {
  it('claims FIFO by created_at, skipping plugins at their cap and jobs whose retry is not due', () => {
    const {db} = freshDb()
    const a = enqueueJob(db, job({plugin: 'a', now: T0}))
    const b = enqueueJob(db, job({plugin: 'b', now: T1}))
    assert.equal(a.status, 'enqueued')
    assert.equal(b.status, 'enqueued')
    assert.equal(claim(db, T2, ['a'])?.plugin, 'b', 'a plugin at its cap is passed over')
    assert.equal(claim(db, T2)?.plugin, 'a')
    assert.equal(claim(db, T2), null, 'nothing left')
  })

  it('a failed attempt with attempts left is requeued at its retry time and claimed only then', () => {
    const {db} = freshDb()
    enqueueJob(db, job())
    const running = claim(db)
    assert.ok(running)
    assert.equal(retryAttempt(db, running, record('failed'), '2026-11-27 10:05:00.000'), true)
    assert.equal(claim(db, '2026-11-27 10:04:59.999'), null, 'not before next_retry_at')
    const again = claim(db, '2026-11-27 10:05:00.000')
    assert.equal(again?.attempt, 2)
    assert.ok(again)
    assert.equal(completeAttempt(db, again, record('succeeded', '2026-11-27 10:05:01.000')), true)
    assert.deepEqual(
      listTransitions(db, again.id).map((t) => `${t.from_status ?? '∅'}→${t.to_status}`),
      ['∅→queued', 'queued→running', 'running→queued', 'queued→running', 'running→succeeded'],
    )
    assert.deepEqual(
      listAttempts(db, again.id).map((a) => a.attempt),
      [1, 2],
    )
  })

  it('an outcome for a row that moved on (cancelled meanwhile) writes nothing and says so', () => {
    const {db} = freshDb()
    enqueueJob(db, job())
    const running = claim(db)
    assert.ok(running)
    db.query(`UPDATE job_queue SET status = 'dead' WHERE id = ?`, [running.id])
    assert.equal(completeAttempt(db, running, record('succeeded')), false)
    assert.equal(findQueueJob(db, running.id)?.status, 'dead')
  })

  it('dedupe: a key that succeeded within the window is not enqueued again; an outstanding one blocks when asked', () => {
    const {db} = freshDb()
    const first = enqueueJob(db, job({dedupeKey: 'k', dedupeTtlMs: 3_600_000, dedupeOutstanding: true}))
    assert.equal(first.status, 'enqueued')
    assert.equal(enqueueJob(db, job({dedupeKey: 'k', dedupeTtlMs: 3_600_000, dedupeOutstanding: true, now: T1})).status, 'deduplicated', 'outstanding')
    const running = claim(db)
    assert.ok(running)
    completeAttempt(db, running, record('succeeded'))
    assert.equal(
      enqueueJob(db, job({dedupeKey: 'k', dedupeTtlMs: 3_600_000, now: '2026-11-27 10:30:00.000'})).status,
      'deduplicated',
      'succeeded within the window',
    )
    assert.equal(enqueueJob(db, job({dedupeKey: 'k', dedupeTtlMs: 3_600_000, now: '2026-11-27 11:00:03.000'})).status, 'enqueued', 'after the window')
  })

  it('a payload nested deeper than the limit is refused before anything is written', () => {
    const {db} = freshDb()
    let deep: unknown = {}
    for (let i = 0; i < 100; i++) deep = {d: deep}
    assert.throws(
      () => enqueueJob(db, job({payload: deep})),
      (e: Error & {code?: string}) => e.code === 'usage' && /nest/.test(e.message),
    )
    assert.equal((db.query('SELECT COUNT(*) AS n FROM job_queue')[0] as {n: number}).n, 0)
  })

  it('recovery requeues running jobs with attempts left and marks the others dead', () => {
    const {db} = freshDb()
    enqueueJob(db, job({plugin: 'again', maxAttempts: 2}))
    enqueueJob(db, job({plugin: 'last', maxAttempts: 1, now: T1}))
    claim(db, T2)
    claim(db, T2)
    const r = recoverRunningJobs(db, '2026-11-27 10:01:00.000')
    assert.equal(r.requeued.length, 1)
    assert.equal(r.dead.length, 1)
    assert.equal(findQueueJob(db, r.dead[0])?.plugin, 'last')
    assert.equal(findQueueJob(db, r.requeued[0])?.status, 'queued')
  })

  it('cancel takes only queued jobs and names the status of any other', () => {
    const {db} = freshDb()
    const r = enqueueJob(db, job())
    assert.equal(r.status, 'enqueued')
    const id = r.status === 'enqueued' ? r.job.id : ''
    assert.deepEqual(cancelQueuedJob(db, id, T1), {ok: true})
    assert.deepEqual(cancelQueuedJob(db, id, T1), {ok: false, status: 'dead'})
    assert.deepEqual(cancelQueuedJob(db, 'nope', T1), {ok: false, status: null})
  })
})

describe('db.undoUnless: writes kept only when the result says so', () => {
  it('keeps, undoes, and undoes on error, inside and outside a transaction', () => {
    const {db} = freshDb()
    const names = () => (db.query(`SELECT name FROM storage_sequences WHERE name NOT LIKE 'plugin_%' ORDER BY name`) as {name: string}[]).map((r) => r.name)
    const insert = (name: string) => db.query('INSERT INTO storage_sequences (name, value) VALUES (?, 1)', [name])
    assert.equal(
      db.undoUnless(
        () => {
          insert('kept')
          return 'yes'
        },
        (r) => r === 'yes',
      ),
      'yes',
    )
    assert.equal(
      db.undoUnless(
        () => {
          insert('undone')
          return 'no'
        },
        (r) => r === 'yes',
      ),
      'no',
      'the result comes back all the same',
    )
    assert.deepEqual(names(), ['kept'])
    db.tx(() => {
      insert('outer')
      db.undoUnless(
        () => insert('inner'),
        () => false,
      )
      assert.throws(() =>
        db.undoUnless(
          () => {
            insert('thrown')
            assert.fail('boom')
          },
          () => true,
        ),
      )
    })
    assert.deepEqual(names(), ['kept', 'outer'])
  })
})
