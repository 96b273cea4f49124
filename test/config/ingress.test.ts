import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {listenCheck} from '../../src/cli/doctor.js'
import {isLoopback, parseListen, parseSize} from '../../src/config/ingress.js'
import {loadConfig} from '../../src/config/load.js'
import {tempDir} from '../helpers/db.js'

/** The api:, webhooks: and tokens.yaml blocks: parsed, checked, and their secrets kept out of every output. */

function write(files: Record<string, string>, mode = 0o600): string {
  const dir = tempDir('ductile-ingress-')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), {recursive: true})
    writeFileSync(join(dir, name), text)
    chmodSync(join(dir, name), mode)
  }
  return join(dir, 'config.yaml')
}
const TOKEN = `${'a'.repeat(12)}token-value-1234`
const SECRET = 'hooksecret-hooksecret-42'
const issues = (file: string, env: NodeJS.ProcessEnv = {}) => loadConfig(file, {env, throwOnError: false}).issues
const errorsAt = (file: string, env: NodeJS.ProcessEnv = {}) =>
  issues(file, env)
    .filter((i) => i.severity === 'error')
    .map((i) => `${i.path}: ${i.message}`)

describe('config: api, webhooks and tokens', () => {
  it('reads api tokens from ${VAR} and tokens.yaml, webhooks with secret_ref, and keeps every secret out of the sanitized config', () => {
    const file = write({
      'config.yaml': `plugin_roots: [./p]
include: [tokens.yaml, webhooks.yaml]
api:
  enabled: true
  listen: 127.0.0.1:9999
  rate_limit: {requests: 5, per: 1s}
  auth:
    tokens:
      - {token: \${API_TOKEN}, scopes: ["*"]}
      - {secret_ref: ci, scopes: [plugin:rw]}
webhooks:
  listen: "127.0.0.1:9998"
`,
      'tokens.yaml': `tokens:\n  - {name: ci, key: ci-key-ci-key-ci-key-1, scopes: [jobs:ro]}\n  - {name: gh, key: ${SECRET}}\n`,
      // The original's other format: the file is a bare list of endpoints.
      'webhooks.yaml': '- {name: github, path: /webhook/github, plugin: notify, secret_ref: gh, signature_header: X-Hub-Signature-256, max_body_size: 64KB}\n',
    })
    const c = loadConfig(file, {env: {API_TOKEN: TOKEN}})
    assert.deepEqual(
      c.issues.filter((i) => i.severity === 'error'),
      [],
    )
    assert.equal(c.api.enabled, true)
    assert.deepEqual(c.api.listen, {host: '127.0.0.1', port: 9999, text: '127.0.0.1:9999'})
    assert.deepEqual(
      c.api.tokens.map((t) => [t.name, t.token, t.scopes]),
      [
        ['api.auth.tokens[0]', TOKEN, ['*']],
        ['ci', 'ci-key-ci-key-ci-key-1', ['plugin:rw']],
      ],
    )
    assert.deepEqual(c.api.rate_limit, {requests: 5, perMs: 1000})
    assert.equal(c.webhooks.endpoints.length, 1)
    assert.deepEqual(
      {...c.webhooks.endpoints[0], file: undefined},
      {
        name: 'github',
        path: '/webhook/github',
        plugin: 'notify',
        command: 'handle',
        secret: SECRET,
        signature_header: 'X-Hub-Signature-256',
        max_body_bytes: 65536,
        file: undefined,
      },
    )
    const shown = JSON.stringify(c.sanitized)
    for (const s of [TOKEN, SECRET, 'ci-key-ci-key-ci-key-1']) {
      assert.ok(!shown.includes(s), `sanitized config hides ${s}`)
      assert.ok(c.secrets.includes(s), `${s} is a secret to redact`)
    }
  })

  it('refuses a literal token or webhook secret in a file, naming the key and the ${VAR} way', () => {
    const file = write({
      'config.yaml': `plugin_roots: [./p]
api: {enabled: true, auth: {tokens: [{token: literal-token-literal-token, scopes: ["*"]}]}}
webhooks: {listen: "127.0.0.1:9", endpoints: [{name: a, path: /a, plugin: x, secret: literal-secret-literal, signature_header: X-Sig}]}
`,
    })
    const errs = errorsAt(file)
    assert.ok(
      errs.some((e) => e.startsWith('api.auth.tokens[0].token: a literal secret') && e.includes('${VAR}')),
      errs.join('\n'),
    )
    assert.ok(
      errs.some((e) => e.startsWith('webhooks.endpoints[0].secret: a literal secret')),
      errs.join('\n'),
    )
    assert.ok(!errs.join('\n').includes('literal-token-literal-token'), 'the error does not repeat the token')
  })

  it('names every bad value: scope, listen, size, short token, unknown secret_ref, missing signature header', () => {
    const file = write({
      'config.yaml': `plugin_roots: [./p]
api:
  enabled: true
  listen: "localhost"
  max_body_size: lots
  auth: {tokens: [{token: \${SHORT}, scopes: [admin]}, {secret_ref: nobody, scopes: ["*"]}]}
webhooks:
  listen: "127.0.0.1:9"
  endpoints: [{name: a, path: a, plugin: x, secret: \${SHORT}}]
`,
    })
    const errs = errorsAt(file, {SHORT: 'short'}).join('\n')
    for (const want of [
      'api.listen: must be host:port',
      'api.max_body_size: must be a size',
      'api.auth.tokens[0].scopes: unknown scope "admin"',
      'api.auth.tokens[0]: the token is 5 characters; use at least 16',
      'api.auth.tokens[1].secret_ref: no tokens.yaml entry named "nobody"',
      'webhooks.endpoints[0].path: must be a URL path',
      'webhooks.endpoints[0].signature_header: is required',
      'webhooks.endpoints[0]: the secret is 5 characters',
    ])
      assert.ok(errs.includes(want), `${want}\nin:\n${errs}`)
  })

  it('warns when the API or webhooks listen beyond localhost, when tokens.yaml is readable by others, and when nothing listens', () => {
    const file = write(
      {
        'config.yaml': `plugin_roots: [./p]
include: [tokens.yaml]
api: {enabled: true, listen: "0.0.0.0:8080", allowed_origins: ["https://x"], auth: {tokens: [{secret_ref: ci}]}}
webhooks: {listen: ":8091"}
`,
        'tokens.yaml': 'tokens: [{name: ci, key: ci-key-ci-key-ci-key-1, scopes: ["*"]}]\n',
      },
      0o644,
    )
    const warnings = issues(file)
      .filter((i) => i.severity === 'warning')
      .map((i) => `${i.path}: ${i.message}`)
      .join('\n')
    assert.match(warnings, /api\.listen: the API listens on 0\.0\.0\.0:8080, beyond localhost, in plain HTTP: put a TLS-terminating proxy in front/)
    assert.match(warnings, /webhooks\.listen: webhooks listen on :8091, beyond localhost/)
    assert.match(warnings, /api\.allowed_origins: not supported: the API sends no CORS headers/)
    assert.match(warnings, /tokens: this file holds keys and is readable by others \(mode 644\): chmod 600/)
    const none = write({'config.yaml': 'plugin_roots: [./p]\napi: {enabled: true}\n'})
    assert.ok(issues(none).some((i) => i.path === 'api.auth.tokens' && /no tokens/.test(i.message)))
  })

  it('defaults: off, 127.0.0.1:8080, 1 MiB bodies, 100 requests a second per token', () => {
    const c = loadConfig(write({'config.yaml': 'plugin_roots: [./p]\n'}), {env: {}})
    assert.equal(c.api.enabled, false)
    assert.equal(c.api.listen.text, '127.0.0.1:8080')
    assert.equal(c.api.max_body_bytes, 1024 * 1024)
    assert.deepEqual(c.api.rate_limit, {requests: 100, perMs: 1000})
    assert.equal(c.webhooks.listen, null)
  })

  it('parses listen addresses, sizes and loopback hosts', () => {
    assert.deepEqual(parseListen('[::1]:80'), {host: '::1', port: 80, text: '[::1]:80'})
    assert.deepEqual(parseListen(':8091'), {host: '0.0.0.0', port: 8091, text: ':8091'})
    assert.equal(typeof parseListen('host:99999'), 'string')
    assert.equal(parseSize('1MB'), 1048576)
    assert.equal(parseSize('512kb'), 524288)
    assert.equal(parseSize(100), 100)
    assert.equal(parseSize('-1'), null)
    assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost'))
    assert.ok(!isLoopback('0.0.0.0') && !isLoopback('192.168.1.2'))
  })

  it('doctor warns when the API or webhooks listen beyond localhost, and says nothing without listeners', () => {
    const exposed = loadConfig(
      write({'config.yaml': 'plugin_roots: [./p]\napi: {enabled: true, listen: "0.0.0.0:8080"}\nwebhooks: {listen: "127.0.0.1:8091"}\n'}),
      {env: {}},
    )
    const c = listenCheck(exposed)
    assert.equal(c?.status, 'warn')
    assert.match(c?.detail ?? '', /API on 0\.0\.0\.0:8080: beyond localhost, in plain HTTP/)
    assert.match(c?.hint ?? '', /TLS-terminating proxy/)
    const local = loadConfig(write({'config.yaml': 'plugin_roots: [./p]\napi: {enabled: true}\n'}), {env: {}})
    assert.equal(listenCheck(local)?.status, 'ok')
    assert.equal(listenCheck(loadConfig(write({'config.yaml': 'plugin_roots: [./p]\n'}), {env: {}})), null)
  })

  it('names and references are not secrets: a secret_ref, a tokens.yaml name and scopes stay readable in logs and the sanitized config', () => {
    const file = write({
      'config.yaml': `plugin_roots: [./p]
include: [tokens.yaml]
api: {enabled: true, auth: {tokens: [{secret_ref: deploy-bot, scopes: [plugin:rw]}]}}
webhooks: {listen: "127.0.0.1:9", endpoints: [{name: github, path: /webhook/github, plugin: x, secret_ref: hook, signature_header: X-Hub-Signature-256}]}
`,
      'tokens.yaml': `tokens:\n  - {name: deploy-bot, key: ci-key-ci-key-ci-key-1, scopes: [jobs:ro]}\n  - {name: hook, key: ${SECRET}}\n`,
    })
    const c = loadConfig(file, {env: {}})
    for (const name of ['hook', 'deploy-bot', 'plugin:rw', 'jobs:ro', 'X-Hub-Signature-256'])
      assert.ok(!c.secrets.includes(name), `${name} is not a secret (a log line with "webhooks" stays whole)`)
    for (const s of [SECRET, 'ci-key-ci-key-ci-key-1']) assert.ok(c.secrets.includes(s), `${s} is`)
    const shown = c.sanitized as {webhooks: {endpoints: {secret_ref: string}[]}; tokens: {name: string; key: string}[]}
    assert.equal(shown.webhooks.endpoints[0]!.secret_ref, 'hook')
    assert.deepEqual(
      shown.tokens.map((t) => [t.name, t.key]),
      [
        ['deploy-bot', '***'],
        ['hook', '***'],
      ],
    )
  })
})
