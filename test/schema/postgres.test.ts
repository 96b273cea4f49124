// stores: postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import type {Db, Param} from '../../src/schema/db.js'
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
