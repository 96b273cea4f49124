import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {freshDb} from '../helpers/db.js'

const sha = (p: string) => readFileSync(p).toString('base64')

/** Issue 13.3 and 13.9: files we write never replace what they should not, and data files are private. */
describe('trust: files the CLI writes', () => {
  it('metrics --textfile refuses the database, a symlink, a FIFO, a device and a name without .prom (exit 2, nothing changed)', async () => {
    const {db, path, dir} = freshDb()
    db.close()
    const before = sha(path)
    const fifo = join(dir, 'pipe.prom')
    execFileSync('mkfifo', [fifo])
    const victim = join(dir, 'victim.txt')
    writeFileSync(victim, 'keep me')
    const link = join(dir, 'link.prom')
    symlinkSync(victim, link)
    const dbNamedProm = join(dir, 'copy.prom')
    writeFileSync(dbNamedProm, readFileSync(path))
    for (const target of [path, link, fifo, '/dev/null', dbNamedProm, join(dir, 'metrics.txt')]) {
      const r = await runCli(['metrics', '--db', path, '--textfile', target])
      assert.equal(r.code, 2, `${target}: ${r.stderr}`)
      assert.match(r.stderr, /\.prom|symlink|FIFO|device|SQLite database/)
    }
    assert.equal(sha(path), before)
    assert.equal(readFileSync(victim, 'utf8'), 'keep me')
    assert.equal(readFileSync(dbNamedProm).toString('latin1', 0, 15), 'SQLite format 3')
    const ok = join(dir, 'ductile.prom')
    writeFileSync(ok, 'old\n')
    const r = await runCli(['metrics', '--db', path, '--textfile', ok])
    assert.equal(r.code, 0, r.stderr)
    assert.match(readFileSync(ok, 'utf8'), /^# HELP ductile_jobs/m)
  })

  it('vacuum --into and db backup create their copy 0600 from the first byte', async () => {
    const {db, path, dir} = freshDb()
    db.close()
    const into = join(dir, 'compact.db')
    const v = await runCli(['vacuum', '--db', path, '--into', into])
    assert.equal(v.code, 0, v.stderr)
    assert.equal(statSync(into).mode & 0o777, 0o600)
    const backup = join(dir, 'backup.db')
    const b = await runCli(['db', 'backup', '--db', path, '--to', backup])
    assert.equal(b.code, 0, b.stderr)
    assert.equal(statSync(backup).mode & 0o777, 0o600)
    const again = await runCli(['vacuum', '--db', path, '--into', into])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /already exists/)
  })
})
