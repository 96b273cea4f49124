import assert from 'node:assert/strict'
import {readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {Checkpointer} from '../../src/engine/checkpointer.js'
import {openDb} from '../../src/schema/db.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {enqueue, rows, startEngine, testEnv, waitFor} from '../helpers/engine.js'
import {lite} from '../helpers/store.js'

describe('the checkpoint thread', () => {
  it('copies the WAL back while the engine runs; the engine itself never checkpoints inside a commit', async () => {
    const env = testEnv()
    const engine = await startEngine(env)
    try {
      const engineDb = (engine as unknown as {db: {sqlite: {pragma: (s: string, o: object) => unknown}}}).db
      assert.equal(engineDb.sqlite.pragma('wal_autocheckpoint', {simple: true}), 0)
      const ids = Array.from({length: 40}, () => enqueue(env, 'echo-sh'))
      await waitFor('the jobs to finish', () => rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE status = 'succeeded'`)[0].n === ids.length)
      // The wal-index (the -shm file, SQLite's documented layout) says how much of the log is copied back:
      // mxFrame at byte 16, nBackfill at byte 96. Neither the engine's connection (wal_autocheckpoint 0)
      // nor the test's (too few pages for its automatic checkpoint) copies anything; only the thread can.
      const shm = () => readFileSync(`${env.dbPath}-shm`).subarray(0, 128)
      await waitFor('the WAL to be copied back', () => {
        const b = shm()
        const mxFrame = b.readUInt32LE(16)
        return mxFrame > 0 && b.readUInt32LE(96) === mxFrame
      })
      assert.ok(statSync(`${env.dbPath}-wal`).size < 64 * 1024 * 1024)
    } finally {
      await engine.stop()
    }
  })

  // Both tests wait on the thread's own RESTART reports, never on wall-clock budgets: a loaded machine only
  // makes them take longer.
  it('keeps the WAL bounded under a steady stream of commits (a RESTART once it holds restartAfterFrames)', {timeout: 120_000}, async () => {
    const {db, path} = freshDb()
    lite(db).sqlite.pragma('wal_autocheckpoint = 0')
    lite(db).sqlite.exec('CREATE TABLE blobs (b BLOB)')
    const insert = lite(db).sqlite.prepare('INSERT INTO blobs VALUES (randomblob(40000))')
    const restarts: {busy: boolean}[] = []
    const c = new Checkpointer(path, {intervalMs: 20, restartAfterFrames: 1000, onError: (m) => assert.fail(m), onRestart: (r) => restarts.push(r)})
    try {
      // Commit about every millisecond, as a busy engine does (~10 pages a commit): a PASSIVE pass always finds
      // new frames, so only the RESTART lets the log start again from its beginning. Go on until the thread
      // has restarted the log three times and ~120 MiB went through it.
      let maxWal = 0
      let commits = 0
      while (restarts.filter((r) => !r.busy).length < 3 || commits < 3000) {
        db.tx(() => insert.run())
        commits++
        maxWal = Math.max(maxWal, statSync(`${path}-wal`).size)
        await new Promise((r) => setTimeout(r, 1))
        if (commits > 100_000) assert.fail(`no RESTART after ${commits} commits`)
      }
      const written = commits * 10 * 4096
      assert.ok(maxWal < written / 4, `the WAL peaked at ${(maxWal / 2 ** 20).toFixed(1)} MiB for about ${(written / 2 ** 20).toFixed(0)} MiB written`)
    } finally {
      await c.stop()
      db.close()
    }
  })

  it('a reader that stays in the log holds the writer off rarely: RESTART tries back off 1 s, then 2 s', {timeout: 120_000}, async () => {
    const {db, path} = freshDb()
    lite(db).sqlite.pragma('wal_autocheckpoint = 0')
    lite(db).sqlite.exec('CREATE TABLE blobs (b BLOB)')
    const insert = lite(db).sqlite.prepare('INSERT INTO blobs VALUES (randomblob(40000))')
    const reader = openDb(path, {mode: 'read'})
    const tries: {busy: boolean; at: number}[] = []
    const c = new Checkpointer(path, {intervalMs: 20, restartAfterFrames: 200, onError: (m) => assert.fail(m), onRestart: (r) => tries.push(r)})
    try {
      // A long read: its snapshot keeps it in the log for the whole run, so every RESTART must give up.
      reader.sqlite.exec('BEGIN')
      reader.query('SELECT COUNT(*) FROM blobs')[0]
      while (tries.length < 3) {
        db.tx(() => insert.run())
        await new Promise((r) => setTimeout(r, 1))
      }
      assert.deepEqual(
        tries.map((t) => t.busy),
        [true, true, true],
        'every try gave up while the reader stayed',
      )
      // Without the back-off a try (and a held-off commit) would come every round, 20 ms apart.
      assert.ok(tries[1].at - tries[0].at >= 1000, `second try ${tries[1].at - tries[0].at} ms after the first`)
      assert.ok(tries[2].at - tries[1].at >= 2000, `third try ${tries[2].at - tries[1].at} ms after the second`)
    } finally {
      reader.sqlite.exec('COMMIT')
      reader.close()
      await c.stop()
      db.close()
    }
  })

  it('reports a thread that cannot work (the engine then checkpoints in its commits again)', async () => {
    const errors: string[] = []
    const c = new Checkpointer(join(tempDir(), 'missing.db'), {onError: (m) => errors.push(m)})
    await waitFor('the error', () => errors.length > 0)
    assert.match(errors[0], /cannot open .*missing\.db/)
    assert.equal(errors.length, 1, 'reported once')
    await c.stop()
  })
})
