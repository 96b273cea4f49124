import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {FIXTURE_PLUGINS, rows, testEnv} from '../helpers/engine.js'
import {freshDb, tempDir} from '../helpers/db.js'

const config = (yaml: string, root = FIXTURE_PLUGINS) => {
  const dir = tempDir()
  const file = join(dir, 'config.yaml')
  writeFileSync(file, `state:\n  path: ./ductile.db\nplugin_roots:\n  - ${root}\n${yaml}`)
  return file
}

/** Issue 13.14: usage errors exit 2 naming the file, key or flag; valid-but-suspect input warns. */
describe('trust: usage errors say what is wrong', () => {
  it('breakers reset of an unknown plugin: exit 2, nothing written; of a configured one that never tripped: exit 0, nothing written', async () => {
    const env = testEnv()
    const r = await runCli(['breakers', 'reset', 'no-such-plugin', '--db', env.dbPath, '--config', env.configPath])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /unknown plugin no-such-plugin: no circuit breaker and no plugin of that name in the config/)
    assert.match(r.stderr, /known plugins: .*behave/)
    const known = await runCli(['breakers', 'reset', 'behave', '--db', env.dbPath, '--config', env.configPath, '--json'])
    assert.equal(known.code, 0, known.stderr)
    assert.equal(known.json().from, null)
    assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM circuit_breakers')[0].n, 0)
    assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM circuit_breaker_transitions')[0].n, 0)
  })

  it('a duration flag past 100 years, an empty event type and watch --interval 0s: exit 2 naming the flag', async () => {
    const {db, path} = freshDb()
    db.close()
    const since = await runCli(['jobs', 'list', '--since', '99999999999w', '--db', path])
    assert.equal(since.code, 2, since.stderr)
    assert.match(since.stderr, /duration "99999999999w" is longer than 100 years/)
    const emit = await runCli(['events', 'emit', '', '--db', path, '--config', config('')])
    assert.equal(emit.code, 2, emit.stderr)
    assert.match(emit.stderr, /the event type is empty/)
    const watch = await runCli(['watch', '--interval', '0s', '--db', path])
    assert.equal(watch.code, 2, watch.stderr)
    assert.match(watch.stderr, /--interval 0ms is too short: at least 100ms/)
  })

  it('timeouts and backoff of 0s are refused, naming the file and key', async () => {
    const file = config('plugins:\n  behave:\n    timeouts: {poll: 0s}\n    retry: {backoff_base: 0s}\n')
    const r = await runCli(['config', 'check', '--config', file])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    const out = r.stdout + r.stderr
    assert.match(out, /config\.yaml: plugins\.behave\.timeouts\.poll: must be more than 0/)
    assert.match(out, /config\.yaml: plugins\.behave\.retry\.backoff_base: must be more than 0/)
  })

  it('a YAML alias bomb: exit 2 naming the file, promptly', async () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for (let i = 1; i < 12; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      )
    const file = config(`${lines.join('\n')}\n`)
    const r = await runCli(['config', 'check', '--config', file])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(r.stdout + r.stderr, /config\.yaml: \(yaml\): cannot be loaded: .*alias/i)
  })

  it('nested config typos warn with the key path; a symlinked plugin directory is reported, not skipped in silence', async () => {
    const root = tempDir('ductile-roots-')
    mkdirSync(join(root, 'real'))
    symlinkSync(join(FIXTURE_PLUGINS, 'echo-sh'), join(root, 'linked'))
    const file = config('plugins:\n  behave:\n    retry: {max_attemps: 3}\n    circuit_breaker: {treshold: 2}\nenvironment_vars:\n  inclde: [.env]\n', root)
    const r = await runCli(['config', 'check', '--config', file])
    const out = r.stdout + r.stderr
    assert.match(out, /plugins\.behave\.retry\.max_attemps: unknown key "max_attemps"/)
    assert.match(out, /plugins\.behave\.circuit_breaker\.treshold: unknown key "treshold"/)
    assert.match(out, /environment_vars\.inclde: unknown key "inclde"/)
    assert.match(out, /linked is a symlink to a directory: skipped \(set service\.allow_symlinks/)
  })
})
