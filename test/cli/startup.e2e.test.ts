import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {insertJob} from '../helpers/fixtures.js'

/** bin/run.js starts the CLI bundle from V8's code cache in the user's cache directory. */
describe('start-up from the code cache', () => {
  const setup = () => {
    const {db, path} = freshDb()
    insertJob(db, {status: 'succeeded'})
    db.close()
    const cacheHome = tempDir('ductile-cache-')
    const status = () => runCli(['jobs', 'status', '--db', path, '--json'], {env: {XDG_CACHE_HOME: cacheHome}})
    const caches = () => readdirSync(join(cacheHome, 'ductile')).filter((n) => n.endsWith('.v8cache'))
    return {cacheHome, status, caches}
  }

  it('the first run writes a private cache; later runs use it; a damaged one is replaced and changes nothing', async () => {
    const {cacheHome, status, caches} = setup()
    const first = await status()
    assert.equal(first.code, 0, first.stderr)
    const [file] = caches()
    assert.ok(file, 'a cache file was written')
    const path = join(cacheHome, 'ductile', file)
    assert.equal(statSync(join(cacheHome, 'ductile')).mode & 0o777, 0o700)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const written = statSync(path).mtimeMs
    const second = await status()
    assert.deepEqual(second.json(), first.json())
    assert.equal(statSync(path).mtimeMs, written, 'an accepted cache is not written again')
    writeFileSync(path, Buffer.alloc(4096, 0x5a))
    const third = await status()
    assert.equal(third.code, 0, third.stderr)
    assert.deepEqual(third.json(), first.json())
    assert.ok(statSync(path).size > 4096, 'V8 refused the damaged cache and the run wrote a good one')
  })

  it('commands that import() at run time work from the cache (help)', async () => {
    const {status, cacheHome} = setup()
    await status()
    const help = await runCli(['help', 'jobs', 'status'], {env: {XDG_CACHE_HOME: cacheHome}})
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /EXAMPLES/)
  })

  it('a cache directory others may write is not used', async () => {
    const {cacheHome, status, caches} = setup()
    mkdirSync(join(cacheHome, 'ductile'), {mode: 0o700})
    chmodSync(join(cacheHome, 'ductile'), 0o777)
    const r = await status()
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(caches(), [])
  })

  it('DUCTILE_COMPILE_CACHE=0 leaves no cache', async () => {
    const {cacheHome, caches} = setup()
    const {path} = freshDb()
    const r = await runCli(['jobs', 'status', '--db', path], {env: {XDG_CACHE_HOME: cacheHome, DUCTILE_COMPILE_CACHE: '0'}})
    assert.equal(r.code, 0, r.stderr)
    mkdirSync(join(cacheHome, 'ductile'), {recursive: true})
    assert.deepEqual(caches(), [])
  })
})
