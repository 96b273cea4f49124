import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import BetterSqlite3 from 'better-sqlite3'

import {BIN, ROOT, runCli} from '../helpers/cli.js'
import {tempDir} from '../helpers/db.js'
import {FIXTURE_PLUGINS} from '../helpers/engine.js'

const snapshot = (p: string) => ({bytes: readFileSync(p).toString('base64'), mode: statSync(p).mode, wal: existsSync(`${p}-wal`)})

function configIn(dir: string, state = './ductile.db', extra = ''): string {
  const file = join(dir, 'config.yaml')
  writeFileSync(file, `${extra}state:\n  path: ${state}\nplugin_roots:\n  - ${FIXTURE_PLUGINS}\n`)
  return file
}

/** Issue 13.6: only Ductile's databases are Ductile's; a refused file is left exactly as it was. */
describe('trust: foreign and empty files are never changed', () => {
  it('a SQLite file with other tables is "not a Ductile database" to every command, byte for byte unchanged', async () => {
    const dir = tempDir()
    const path = join(dir, 'app.db')
    const other = new BetterSqlite3(path)
    other.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada')")
    other.close()
    const config = configIn(dir, './app.db')
    const before = snapshot(path)
    for (const args of [
      ['db', 'migrate'],
      ['db', 'init'],
      ['jobs', 'status'],
      ['breakers', 'reset', 'behave'],
      ['jobs', 'enqueue', 'behave'],
      ['db', 'check'],
      ['engine', 'start'],
    ]) {
      const r = await runCli([...args, '--db', path, '--config', config])
      assert.notEqual(r.code, 0, `${args.join(' ')} succeeded`)
      assert.match(r.stderr + r.stdout, /not a Ductile database/, `${args.join(' ')}: ${r.stderr}`)
      assert.deepEqual(snapshot(path), before, `${args.join(' ')} changed the file`)
    }
  })

  it('an empty file: breakers reset and jobs enqueue fail and leave it empty; db init then creates the schema', async () => {
    const dir = tempDir()
    const path = join(dir, 'empty.db')
    writeFileSync(path, '', {mode: 0o644})
    const config = configIn(dir, './empty.db')
    for (const args of [
      ['breakers', 'reset', 'behave'],
      ['jobs', 'enqueue', 'behave'],
    ]) {
      const r = await runCli([...args, '--db', path, '--config', config])
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /no Ductile schema/)
      assert.equal(statSync(path).size, 0)
      assert.equal(statSync(path).mode & 0o777, 0o644)
    }
    const init = await runCli(['db', 'init', '--db', path])
    assert.equal(init.code, 0, init.stderr)
    assert.equal(statSync(path).mode & 0o777, 0o600)
  })
})

/** Issue 13.12: read commands, write commands and the engine find the database by one resolver. */
describe('trust: one database resolver', () => {
  it('state.path with ${DATA_DIR} from an environment_vars include: init, enqueue and status use the same file', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'data'))
    writeFileSync(join(dir, '.env'), `DATA_DIR=${join(dir, 'data')}\n`)
    const config = configIn(dir, '${DATA_DIR}/ductile.db', 'environment_vars:\n  include: [.env]\n')
    const init = await runCli(['db', 'init', '--config', config, '--json'])
    assert.equal(init.code, 0, init.stderr)
    assert.equal(init.json().path, join(dir, 'data', 'ductile.db'))
    const enq = await runCli(['jobs', 'enqueue', 'behave', '--config', config])
    assert.equal(enq.code, 0, enq.stderr)
    const status = await runCli(['jobs', 'status', '--config', config, '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(JSON.stringify(status.json()).includes('"queued"'), true, status.stdout)
    assert.equal(existsSync(join(dir, '${DATA_DIR}')), false)
  })

  it('a config too broken to name its database is an error, not the default path', async () => {
    const dir = tempDir()
    const file = join(dir, 'config.yaml')
    writeFileSync(file, 'state: [unclosed\n')
    const r = await runCli(['jobs', 'status', '--config', file])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /cannot tell the database from .*config\.yaml/)
  })

  it('an empty DUCTILE_DB counts as unset', () => {
    const dir = tempDir()
    const config = configIn(dir)
    const env = {...process.env, DUCTILE_DB: '', NODE_ENV: '', NO_COLOR: '1'}
    const init = spawnSync(process.execPath, [BIN, 'db', 'init', '--config', config, '--json'], {cwd: ROOT, env, encoding: 'utf8'})
    assert.equal(init.status, 0, init.stderr)
    assert.equal(JSON.parse(init.stdout).path, join(dir, 'ductile.db'))
    const enq = spawnSync(process.execPath, [BIN, 'jobs', 'enqueue', 'behave', '--config', config], {cwd: ROOT, env, encoding: 'utf8'})
    assert.equal(enq.status, 0, enq.stderr)
  })
})
