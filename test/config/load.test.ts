import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {DEFAULT_RETRY, DEFAULT_TIMEOUTS_MS} from '../../src/config/defaults.js'
import {loadConfig} from '../../src/config/load.js'
import {redact} from '../../src/config/secrets.js'
import {tempDir} from '../helpers/db.js'

/** Loading config.yaml in process: files, includes, env files, defaults, errors with key paths, secrets. */

function write(files: Record<string, string>): string {
  const dir = tempDir('ductile-config-')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), {recursive: true})
    writeFileSync(join(dir, name), text)
  }
  return join(dir, 'config.yaml')
}
const errors = (file: string, env: NodeJS.ProcessEnv = {}) => loadConfig(file, {env, throwOnError: false}).issues.filter((i) => i.severity === 'error')

describe('config: reading and validating', () => {
  it('fills what the file does not say from the one set of defaults', () => {
    const c = loadConfig(write({'config.yaml': 'plugin_roots: [./plugins]\nplugins:\n  echo: {}\n'}), {env: {}})
    const p = c.plugins.echo
    assert.ok(p)
    assert.deepEqual(p.retry, DEFAULT_RETRY)
    assert.deepEqual(p.timeouts_ms, DEFAULT_TIMEOUTS_MS)
    assert.equal(c.service.tick_interval_ms, 60_000)
  })

  it('merges included files and directories: maps and scalars override, lists append', () => {
    const file = write({
      'config.yaml': 'plugin_roots: [./a]\nservice: {name: main, max_workers: 1}\ninclude: [./conf.d, ./more.yaml]\n',
      'conf.d/10-plugins.yaml': 'plugins:\n  echo: {retry: {max_attempts: 2}}\n',
      'more.yaml': 'plugin_roots: [./b]\nservice: {name: more}\n',
    })
    const c = loadConfig(file, {env: {}})
    assert.equal(c.service.name, 'more')
    assert.equal(c.service.max_workers, 1)
    assert.equal(c.plugins.echo?.retry.max_attempts, 2)
    assert.deepEqual(
      c.pluginRoots.map((r) => r.split('/').pop()),
      ['a', 'b'],
    )
  })

  it('reads environment_vars.include files in dotenv syntax (export, quotes, comments); the process environment wins', () => {
    const file = write({
      'config.yaml':
        'environment_vars: {include: [./.env]}\nplugin_roots: [./p]\nplugins:\n  echo:\n    config: {a: "${A}", b: "${B}", c: "${C}", d: "${D}"}\n',
      '.env': '# comment\nexport A=one\nB="two words"\nC=three # trailing comment\nD=from-file\n',
    })
    const c = loadConfig(file, {env: {D: 'from-process'}})
    assert.deepEqual(c.plugins.echo?.config, {a: 'one', b: 'two words', c: 'three', d: 'from-process'})
  })

  it('names the file and key of every error, and an unset ${VAR} by its line', () => {
    const file = write({
      'config.yaml':
        'plugin_roots: [./p]\nservice: {tick_interval: 5x, max_workers: 0}\nplugins:\n  echo: {retry: {backoff_base: 0s}, config: {k: "${NOPE}"}}\n',
    })
    const msgs = errors(file).map((i) => `${i.path}: ${i.message}`)
    assert.ok(
      msgs.some((m) => m.startsWith('service.tick_interval: ')),
      msgs.join('\n'),
    )
    assert.ok(
      msgs.some((m) => m.startsWith('service.max_workers: must be a whole number ≥ 1')),
      msgs.join('\n'),
    )
    assert.ok(
      msgs.some((m) => m.startsWith('plugins.echo.retry.backoff_base: must be more than 0')),
      msgs.join('\n'),
    )
    assert.ok(
      msgs.some((m) => m.startsWith('line 4: ${NOPE} is not set')),
      msgs.join('\n'),
    )
  })

  it('state.url (or database.url) names a PostgreSQL database; service.engine_lease is at least a second', () => {
    const url = 'postgres://ductile@db1.internal/ductile'
    assert.equal(loadConfig(write({'config.yaml': `plugin_roots: []\nstate: {url: "${url}"}\n`}), {env: {}}).statePath, url)
    assert.equal(loadConfig(write({'config.yaml': `plugin_roots: []\ndatabase: {url: "${url}"}\n`}), {env: {}}).statePath, url)
    const c = loadConfig(write({'config.yaml': 'plugin_roots: []\n'}), {env: {}})
    assert.equal(c.service.engine_lease_ms, 30_000)
    const msgs = errors(write({'config.yaml': 'plugin_roots: []\nservice: {engine_lease: 500ms}\n'})).map((i) => `${i.path}: ${i.message}`)
    assert.deepEqual(msgs, ['service.engine_lease: must be at least 1s'])
  })

  it('refuses an include loop and says which files make it', () => {
    const file = write({'config.yaml': 'plugin_roots: [./p]\ninclude: [./a.yaml]\n', 'a.yaml': 'include: [./config.yaml]\n'})
    assert.ok(errors(file).some((i) => /include loop: config.yaml → a.yaml → config.yaml/.test(i.message)))
  })

  it('collects secret values (secret-looking keys, URL passwords, ${VAR}s with secret names) and masks them', () => {
    const file = write({
      'config.yaml':
        'plugin_roots: [./p]\nplugins:\n  echo:\n    config: {api_token: tok-123456, url: "https://me:pa55word@db.example/x", note: "${MY_PASSWORD}", city: Hobart}\n',
    })
    const c = loadConfig(file, {env: {MY_PASSWORD: 'env-secret-9'}})
    for (const s of ['tok-123456', 'pa55word', 'env-secret-9']) assert.ok(c.secrets.includes(s), s)
    assert.ok(!c.secrets.includes('Hobart'))
    const text = JSON.stringify(c.sanitized)
    for (const s of ['tok-123456', 'pa55word', 'env-secret-9']) assert.ok(!text.includes(s), `sanitized config holds ${s}`)
    assert.equal(redact('token tok-123456 and "pa55word"', c.secrets), 'token *** and "***"')
  })
})
