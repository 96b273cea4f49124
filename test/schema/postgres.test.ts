// stores: postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import type {Db, Param} from '../../src/schema/db.js'
import {claimNextJob, enqueueJob} from '../../src/queries/queue.js'
import {formatTs} from '../../src/schema/time.js'
import {freshDb} from '../helpers/db.js'

/**
 * PgDb's write-behind: a transaction's writes whose result nobody reads go with its next statement that needs
 * an answer, as one query. What must hold whatever fails in such a batch.
 */

const insert = (db: Db) => db.prepare((p: Param<{name: string}>) => db.k.insertInto('storage_sequences').values({name: p('name'), value: 1}))

describe('PgDb: a transaction in fewer round trips', () => {
  it('a deferred write that fails fails its transaction there, and the connection goes on working', () => {
    const {db} = freshDb()
    const write = insert(db)
    db.tx(() => write.write({name: 'taken'}))
    const read = () => db.query('SELECT value FROM storage_sequences WHERE name = ?', ['taken'])
    // The failing write and a statement never sent before go in one batch: the batch fails at the write.
    assert.throws(
      () =>
        db.tx(() => {
          write.write({name: 'taken'})
          return read()
        }),
      /duplicate key/,
    )
    assert.equal(db.inTransaction, false)
    // The statement that never ran is usable afterwards, in a batch and on its own.
    assert.deepEqual(
      db.tx(() => {
        write.write({name: 'other'})
        return read()
      }),
      [{value: 1}],
    )
    assert.deepEqual(read(), [{value: 1}])
    assert.equal(db.query(`SELECT COUNT(*) AS n FROM storage_sequences WHERE name IN ('taken', 'other')`)[0]?.n, 2)
  })

  it('an error before anything was sent rolls back nothing it need not; writes are in order with reads', () => {
    const {db} = freshDb()
    const write = insert(db)
    assert.throws(() =>
      db.tx(() => {
        write.write({name: 'never'})
        throw new Error('changed my mind')
      }),
    )
    assert.deepEqual(db.query(`SELECT name FROM storage_sequences WHERE name = 'never'`), [])
    const seen = db.tx(() => {
      write.write({name: 'a'})
      write.write({name: 'b'})
      return db.query(`SELECT name FROM storage_sequences WHERE name IN ('a', 'b') ORDER BY name`)
    })
    assert.deepEqual(seen, [{name: 'a'}, {name: 'b'}], 'a read sees the writes before it')
  })
})

describe('the claim on PostgreSQL (ductile_claim)', () => {
  it('reads the FIFO index from its head, whatever the statistics say: a backlog does not make every claim slower', () => {
    const {db} = freshDb()
    // A backlog enqueued at once, before autovacuum has analyzed the table (a fresh database, as after a
    // burst): planned from the empty table's statistics, the claim sorted every queued row for each job.
    const base = Date.now() - 2000
    db.tx(() => {
      for (let i = 0; i < 2000; i++)
        enqueueJob(db, {plugin: 'p', command: 'poll', payload: {i}, submittedBy: 'test', maxAttempts: 1, dedupeTtlMs: 0, now: formatTs(new Date(base + i))})
    })
    const now = formatTs(new Date())
    const fetched = db.tx(() => {
      const job = claimNextJob(db, {now, excludePlugins: new Set(), snapshotId: null, enginePid: 1, engineId: 'e'})
      assert.ok(job, 'a job was claimed')
      // Rows this transaction has read so far through indexes (bitmap scans included).
      return db.query(`SELECT idx_tup_fetch + seq_tup_read AS n FROM pg_stat_xact_user_tables WHERE relname = 'job_queue'`)[0]?.n as number
    })
    assert.ok(fetched < 20, `one claim read ${fetched} job rows of a backlog of 2000`)
  })
})
