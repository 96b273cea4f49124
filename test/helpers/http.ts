import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {Engine} from '../../src/engine/engine.js'
import {type Listeners, startListeners} from '../../src/http/server.js'
import {type TestEnv, startEngine, testEnv} from './engine.js'

/** Tokens of the HTTP tests, one per scope, each at least 16 characters. */
export const TOKENS = {
  all: 'tok-all-0123456789abcdef',
  pluginRo: 'tok-plugin-ro-0123456789',
  pluginRw: 'tok-plugin-rw-0123456789',
  jobsRo: 'tok-jobs-ro-0123456789ab',
  eventsRo: 'tok-events-ro-0123456789',
  slow: 'tok-rate-limited-0123456',
} as const
export const HOOK_SECRET = 'webhook-secret-0123456789'

/** The api and webhooks blocks every HTTP test starts from (port 0: a free one). */
export function ingressYaml(o: {api?: string; webhooks?: string} = {}): string {
  return `include: [tokens.yaml]
api:
  enabled: true
  listen: 127.0.0.1:0
${o.api ?? ''}  auth:
    tokens:
      - {token: \${T_ALL}, scopes: ["*"]}
      - {token: \${T_PLUGIN_RO}, scopes: [plugin:ro]}
      - {token: \${T_PLUGIN_RW}, scopes: [plugin:rw]}
      - {token: \${T_JOBS_RO}, scopes: [jobs:ro]}
      - {token: \${T_EVENTS_RO}, scopes: [events:ro]}
      - {secret_ref: slow, scopes: ["*"]}
webhooks:
  listen: 127.0.0.1:0
  endpoints:
    - {name: github, path: /webhook/github, plugin: echo-sh, secret_ref: hook, signature_header: X-Hub-Signature-256, max_body_size: 4KB}
${o.webhooks ?? ''}`
}

export interface HttpEnv {
  env: TestEnv
  engine: Engine
  listeners: Listeners
  api: string
  hooks: string
  close(): Promise<void>
}

/** The variables ingressYaml's tokens come from. */
export const TOKEN_VARS = {
  T_ALL: TOKENS.all,
  T_PLUGIN_RO: TOKENS.pluginRo,
  T_PLUGIN_RW: TOKENS.pluginRw,
  T_JOBS_RO: TOKENS.jobsRo,
  T_EVENTS_RO: TOKENS.eventsRo,
}

/** A test environment whose config has the API and webhooks (its tokens.yaml written beside it). */
export function httpTestEnv(yaml: string, opts: {service?: string} = {}): TestEnv {
  const env = testEnv(yaml, opts)
  writeFileSync(join(env.dir, 'tokens.yaml'), `tokens:\n  - {name: slow, key: ${TOKENS.slow}}\n  - {name: hook, key: ${HOOK_SECRET}}\n`, {mode: 0o600})
  return env
}

/** A real engine in process with its real listeners on free ports. */
export async function startHttpEnv(yaml: string): Promise<HttpEnv> {
  const env = httpTestEnv(yaml)
  Object.assign(process.env, TOKEN_VARS)
  const engine = await startEngine(env)
  const listeners = await startListeners(engine.httpDeps())
  return {
    env,
    engine,
    listeners,
    api: `http://${listeners.api}`,
    hooks: `http://${listeners.webhooks}`,
    async close() {
      await listeners.close()
      await engine.stop()
      env.db.close()
    },
  }
}

export interface Answer {
  status: number
  headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: a JSON answer read loosely: a missing field fails the assertion
  body: any
  text: string
}

export async function call(
  url: string,
  o: {method?: string; token?: string; json?: unknown; body?: string; headers?: Record<string, string>} = {},
): Promise<Answer> {
  const headers: Record<string, string> = {...o.headers}
  if (o.token) headers.authorization = `Bearer ${o.token}`
  let body: string | undefined = o.body
  if (o.json !== undefined) {
    body = JSON.stringify(o.json)
    headers['content-type'] = 'application/json'
  }
  const r = await fetch(url, {method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers, body})
  const text = await r.text()
  let parsed: unknown = null
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON: the test reads `text`
  }
  return {status: r.status, headers: r.headers, body: parsed, text}
}
