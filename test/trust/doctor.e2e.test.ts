import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {MIN, ago, insertAttempt, insertJob} from '../helpers/fixtures.js'

/** Issue 13.16: doctor sees a full disk and an engine that stopped claiming. */
describe('trust: doctor checks free space and that the engine claims', () => {
  it('due work waiting with no recent claim fails "claiming"; a recent claim passes', async () => {
    const {db, path} = freshDb()
    const old = insertJob(db, {plugin: 'weather', status: 'succeeded', created_at: ago(30 * MIN)})
    insertAttempt(db, {job_id: old.id, created_at: ago(20 * MIN)})
    insertJob(db, {plugin: 'weather', status: 'queued', created_at: ago(10 * MIN)})
    const stuck = await runCli(['doctor', '--db', path, '--engine-optional', '--json'])
    assert.equal(stuck.code, 1, stuck.stderr)
    const claiming = stuck.json().checks.find((c: {name: string}) => c.name === 'claiming')
    assert.equal(claiming.status, 'fail')
    assert.match(claiming.detail, /the engine is not claiming: weather job .* has waited 6\d\d s/)
    insertAttempt(db, {job_id: old.id, attempt: 2, created_at: ago(0)})
    const claimed = await runCli(['doctor', '--db', path, '--engine-optional', '--json'])
    assert.equal(claimed.json().checks.find((c: {name: string}) => c.name === 'claiming').status, 'ok', claimed.stdout)
  })

  it('free space under --min-free fails "disk_space" with the figure and what to do', async () => {
    const {db, path} = freshDb()
    db.close()
    const full = await runCli(['doctor', '--db', path, '--engine-optional', '--min-free', '100000000'])
    assert.equal(full.code, 1)
    assert.match(full.stdout, /FAIL\s+disk_space\s+only \d+ MiB free on the database's volume \(minimum 100000000 MiB\)/)
    assert.match(full.stdout, /free space on that volume/)
    const fine = await runCli(['doctor', '--db', path, '--engine-optional', '--min-free', '0', '--json'])
    assert.equal(fine.json().checks.find((c: {name: string}) => c.name === 'disk_space').status, 'ok')
  })
})

/** A real full volume: a small tmpfs (root only; skipped elsewhere). */
describe('trust: a full disk', () => {
  it('engine start says the disk is full and leaves no empty pid file; doctor fails disk_space', {timeout: 60_000}, async (t) => {
    const dir = tempDir('ductile-full-')
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]).status !== 0) {
      t.skip('mounting a tmpfs needs root')
      return
    }
    try {
      const path = join(dir, 'ductile.db')
      const init = await runCli(['db', 'init', '--db', path])
      assert.equal(init.code, 0, init.stderr)
      const config = join(tempDir(), 'config.yaml')
      writeFileSync(config, `state:\n  path: ${path}\nplugin_roots: []\n`)
      // Fill the volume to the last block.
      spawnSync('sh', ['-c', `cat /dev/zero > ${join(dir, 'filler')}`])
      const r = await runCli(['engine', 'start', '--config', config])
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /cannot create the engine lock .*ductile\.db\.pid.*\n.*the disk holding .* is full/)
      assert.equal(existsSync(`${path}.pid`), false, 'an empty pid file was left behind')
      const doctor = await runCli(['doctor', '--db', path, '--engine-optional', '--json'])
      assert.equal(doctor.json().checks.find((c: {name: string}) => c.name === 'disk_space').status, 'fail')
    } finally {
      spawnSync('umount', [dir])
    }
  })
})
