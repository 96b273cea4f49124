import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {openDb} from '../../src/schema/db.js'
import {freshDb} from '../helpers/db.js'
import {lite} from '../helpers/store.js'

describe('Db transactions', () => {
  const count = (db: ReturnType<typeof freshDb>['db']) => lite(db).sqlite.prepare(`SELECT COUNT(*) FROM storage_sequences WHERE name LIKE 't%'`).pluck().get()
  const insert = (db: ReturnType<typeof freshDb>['db'], name: string) => db.query(`INSERT INTO storage_sequences (name, value) VALUES (?, 0)`, [name])

  it('join: alone it commits its own transaction; inside one it is part of it, with no savepoint to undo it alone', () => {
    const {db, path} = freshDb()
    const other = openDb(path, {mode: 'read'})
    db.join(() => insert(db, 't1'))
    assert.equal(count(other), 1, 'committed on its own')

    assert.throws(() =>
      db.tx(() => {
        db.join(() => insert(db, 't2'))
        assert.equal(count(other), 1, 'not visible before the outer commit')
        throw new Error('outer fails')
      }),
    )
    assert.equal(count(db), 1, 'rolled back with the outer transaction')

    // tx nests as a savepoint: the inner part alone can be undone while the outer goes on.
    db.tx(() => {
      insert(db, 't3')
      assert.throws(() =>
        db.tx(() => {
          insert(db, 't4')
          assert.fail('inner fails')
        }),
      )
    })
    assert.deepEqual(lite(db).sqlite.prepare(`SELECT name FROM storage_sequences WHERE name LIKE 't%' ORDER BY name`).pluck().all(), ['t1', 't3'])
    other.close()
  })
})
