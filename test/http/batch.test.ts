// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {DuctileError} from '../../src/errors.js'
import {CommitBatch} from '../../src/http/batch.js'
import {freshDb} from '../helpers/db.js'

/** Group commit: requests of one turn share a transaction; one refusal does not fail the others. */

const insert = (db: ReturnType<typeof freshDb>['db'], key: string) => () => {
  db.query('INSERT INTO storage_sequences (name, value) VALUES (?, 1)', [key])
  return key
}
const names = (db: ReturnType<typeof freshDb>['db']) =>
  (db.query("SELECT name FROM storage_sequences WHERE name LIKE 'k%' ORDER BY name") as {name: string}[]).map((r) => r.name)

describe('http: group commit', () => {
  it('commits the writes of one turn once, answers each after the commit, and a refusal only fails its own request', async () => {
    const {db} = freshDb()
    let commits = 0
    const batch = new CommitBatch(db, () => commits++)
    const refused = () => {
      throw new DuctileError('validation', 'no')
    }
    const results = await Promise.allSettled([batch.run(insert(db, 'k1')), batch.run(refused), batch.run(insert(db, 'k2'))])
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    assert.equal(commits, 1, 'one commit for the turn')
    assert.deepEqual(names(db), ['k1', 'k2'])
    await batch.run(insert(db, 'k3'))
    assert.equal(commits, 2)
    db.close()
  })

  it('work that fails after writing is undone on its own with a savepoint; other failures fail the whole batch', async () => {
    const {db} = freshDb()
    const batch = new CommitBatch(db, () => {})
    const halfDone = () => {
      insert(db, 'k-half')()
      throw new DuctileError('route_failed', 'after a write')
    }
    const r = await Promise.allSettled([batch.run(insert(db, 'k-a')), batch.run(halfDone, {savepoint: true})])
    assert.deepEqual(
      r.map((x) => x.status),
      ['fulfilled', 'rejected'],
    )
    assert.deepEqual(names(db), ['k-a'], 'the half-done write was undone')
    // A failure of the database kind (here: a constraint) may have written half: nothing of the batch stays.
    const all = await Promise.allSettled([batch.run(insert(db, 'k-b')), batch.run(insert(db, 'k-a'))])
    assert.deepEqual(
      all.map((x) => x.status),
      ['rejected', 'rejected'],
    )
    assert.deepEqual(names(db), ['k-a'])
    db.close()
  })
})
