import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {describe, it} from 'node:test'

import {freshDb} from '../helpers/db.js'
import {waitFor} from '../helpers/engine.js'
import {lite} from '../helpers/store.js'

/** Db.txEager: takes turns with another writer, falls back to the busy handler, joins a caller's transaction. */

describe('db: txEager', () => {
  it('gets the lock once another process lets go, after its looks and then the busy handler; writes commit once', async () => {
    const {db, path} = freshDb()
    // Another process holds the write lock for 300 ms, longer than the 3 ms of looks.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(path)}); db.exec('BEGIN IMMEDIATE'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); db.close() }, 300)`,
      ],
      {stdio: ['ignore', 'pipe', 'inherit']},
    )
    let out = ''
    holder.stdout.on('data', (d) => (out += d))
    await waitFor('the other process to hold the lock', () => out.includes('locked'))
    const n = db.txEager(() => {
      db.query("UPDATE storage_sequences SET value = value + 1 WHERE name = 'plugin_facts'")
      return lite(db).sqlite.prepare("SELECT value FROM storage_sequences WHERE name = 'plugin_facts'").pluck().get()
    }, 3)
    assert.equal(n, 1)
    assert.equal(lite(db).sqlite.inTransaction, false, 'committed')
    await new Promise((r) => holder.on('exit', r))
    db.close()
  })

  it('inside a transaction it joins it, and an error rolls back the whole', () => {
    const {db} = freshDb()
    const bump = () => db.query("UPDATE storage_sequences SET value = value + 1 WHERE name = 'plugin_facts'")
    assert.throws(() =>
      db.tx(() => {
        db.txEager(bump, 3)
        throw new Error('after the inner write')
      }),
    )
    assert.equal(lite(db).sqlite.prepare("SELECT value FROM storage_sequences WHERE name = 'plugin_facts'").pluck().get(), 0)
    db.txEager(bump, 3)
    assert.equal(lite(db).sqlite.prepare("SELECT value FROM storage_sequences WHERE name = 'plugin_facts'").pluck().get(), 1)
    db.close()
  })
})
