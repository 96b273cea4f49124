import {isMap} from '../lib/json.js'
import {type LoadState, err, warn} from './read.js'
import {type ApiConfig, type ApiToken, type Listen, type RateLimit, SCOPES, type Scope, type WebhookEndpoint, type WebhooksConfig} from './types.js'
import {intAt, positiveDurationAt} from './validate.js'

/**
 * The `api:` and `webhooks:` blocks of config.yaml, and the `tokens:` of an included tokens.yaml, in the
 * original's format: where the engine listens, who may call it (bearer tokens with scopes) and which signed
 * webhooks start which plugin. Secrets come from `${VAR}`s or tokens.yaml, never from a literal in config.yaml.
 */

export const DEFAULT_API_LISTEN = '127.0.0.1:8080'
export const MIB = 1024 * 1024
/** Tokens shorter than this are refused: they can be guessed. */
export const MIN_TOKEN_LENGTH = 16

/** `host:port`, `[::1]:port` or `:port` (every interface, as the original's Go listener reads it). */
export function parseListen(text: string): Listen | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text.trim())
  const port = m ? Number(m[3]) : Number.NaN
  if (!m || port > 65535) return `must be host:port, [ipv6]:port or :port (got ${JSON.stringify(text)})`
  return {host: m[1] ?? (m[2] || '0.0.0.0'), port, text: text.trim()}
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** `1MB`, `512KB`, `2MiB` or a number of bytes. */
export function parseSize(v: unknown): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : null
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(String(v))
  if (!m) return null
  const unit = (m[2] ?? 'b').toLowerCase()
  const mult = unit.startsWith('g') ? 1024 * MIB : unit.startsWith('m') ? MIB : unit.startsWith('k') ? 1024 : 1
  const n = Math.floor(Number(m[1]) * mult)
  return n > 0 ? n : null
}

function sizeAt(st: LoadState, file: string, path: string, v: unknown, def: number): number {
  if (v === undefined || v === null) return def
  const n = parseSize(v)
  if (n === null) err(st, file, path, `must be a size such as 1MB, 512KB or a number of bytes (got ${JSON.stringify(v)})`)
  return n ?? def
}

function listenAt(st: LoadState, file: string, path: string, v: unknown, def: string | null): Listen | null {
  const text = v === undefined || v === null || v === '' ? def : String(v)
  if (text === null) return null
  const l = parseListen(text)
  if (typeof l === 'string') {
    err(st, file, path, l)
    return null
  }
  return l
}

function scopesAt(st: LoadState, file: string, path: string, v: unknown): Scope[] {
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v]
  const out: Scope[] = []
  for (const s of list) {
    if (SCOPES.includes(s as Scope)) out.push(s as Scope)
    else err(st, file, path, `unknown scope ${JSON.stringify(s)}: scopes are ${SCOPES.join(', ')}`)
  }
  if (list.length === 0) err(st, file, path, `at least one scope is required (${SCOPES.join(', ')})`)
  return out
}

interface NamedKey {
  key: string
  scopes: unknown
}

/** The `tokens:` entries of tokens.yaml, by name. */
function readTokensYaml(st: LoadState, file: string, raw: unknown): Map<string, NamedKey> {
  const out = new Map<string, NamedKey>()
  if (raw === undefined) return out
  if (!Array.isArray(raw)) {
    err(st, file, 'tokens', 'tokens must be a list of {name, key, scopes}')
    return out
  }
  for (const [i, t] of raw.entries()) {
    const path = `tokens[${i}]`
    if (!isMap(t) || typeof t.name !== 'string' || t.name === '') {
      err(st, file, `${path}.name`, 'is required')
      continue
    }
    if (typeof t.key !== 'string' || t.key === '') {
      err(st, file, `${path}.key`, 'is required')
      continue
    }
    if (out.has(t.name)) err(st, file, `${path}.name`, `duplicate token name ${t.name}`)
    out.set(t.name, {key: t.key, scopes: t.scopes})
  }
  return out
}

export function parseIngress(st: LoadState, file: string, doc: Record<string, unknown>): {api: ApiConfig; webhooks: WebhooksConfig} {
  const named = readTokensYaml(st, file, doc.tokens)
  const ref = (path: string, name: unknown): NamedKey | null => {
    const t = typeof name === 'string' ? named.get(name) : undefined
    if (!t) {
      const known = [...named.keys()].sort().join(', ')
      err(
        st,
        file,
        path,
        `no tokens.yaml entry named ${JSON.stringify(name)} (${known ? `known: ${known}` : 'include a tokens.yaml with tokens: [{name, key, scopes}]'})`,
      )
    }
    return t ?? null
  }

  const a = isMap(doc.api) ? doc.api : {}
  if (doc.api !== undefined && !isMap(doc.api)) err(st, file, 'api', 'api must be a mapping')
  const auth = isMap(a.auth) ? a.auth : {}
  const tokens: ApiToken[] = []
  const rawTokens = auth.tokens ?? []
  if (!Array.isArray(rawTokens)) err(st, file, 'api.auth.tokens', `must be a list of {token: \${VAR}, scopes} or {secret_ref, scopes}`)
  else
    for (const [i, t] of rawTokens.entries()) {
      const path = `api.auth.tokens[${i}]`
      if (!isMap(t)) {
        err(st, file, path, `must be a mapping {token: \${VAR}, scopes: [...]}`)
        continue
      }
      let token: string | null = null
      let name = path
      let scopes: unknown = t.scopes
      if (t.secret_ref !== undefined) {
        const r = ref(`${path}.secret_ref`, t.secret_ref)
        if (r) {
          token = r.key
          name = String(t.secret_ref)
          scopes ??= r.scopes
        }
      } else if (typeof t.token === 'string' && t.token !== '') token = t.token
      else err(st, file, path, `needs token: \${VAR} or secret_ref: a tokens.yaml name`)
      const parsed = scopesAt(st, file, `${path}.scopes`, scopes)
      if (token !== null && token.length < MIN_TOKEN_LENGTH)
        err(st, file, path, `the token is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (for example: openssl rand -hex 32)`)
      else if (token !== null) tokens.push({name, token, scopes: parsed})
    }
  const rate = a.rate_limit
  let rateLimit: RateLimit | null = {requests: 100, perMs: 1000}
  if (rate === false || rate === null) rateLimit = null
  else if (isMap(rate))
    rateLimit = {
      requests: intAt(st, file, 'api.rate_limit.requests', rate.requests, 100, 1),
      perMs: positiveDurationAt(st, file, 'api.rate_limit.per', rate.per, 1000),
    }
  else if (rate !== undefined) err(st, file, 'api.rate_limit', 'must be {requests: N, per: 1s} or false')
  const api: ApiConfig = {
    enabled: a.enabled === true,
    listen: listenAt(st, file, 'api.listen', a.listen, DEFAULT_API_LISTEN) ?? (parseListen(DEFAULT_API_LISTEN) as Listen),
    tokens,
    max_concurrent_sync: intAt(st, file, 'api.max_concurrent_sync', a.max_concurrent_sync, 10, 1),
    max_sync_timeout_ms: positiveDurationAt(st, file, 'api.max_sync_timeout', a.max_sync_timeout, 5 * 60_000),
    max_body_bytes: sizeAt(st, file, 'api.max_body_size', a.max_body_size, MIB),
    request_timeout_ms: positiveDurationAt(st, file, 'api.request_timeout', a.request_timeout, 10_000),
    rate_limit: rateLimit,
    heartbeat_ms: positiveDurationAt(st, file, 'api.heartbeat', a.heartbeat, 15_000),
    ui: a.ui === true,
  }
  if (a.enabled !== undefined && typeof a.enabled !== 'boolean') err(st, file, 'api.enabled', 'must be true or false')
  if (a.ui !== undefined && typeof a.ui !== 'boolean') err(st, file, 'api.ui', 'must be true or false (the web Overwatch under /ui/)')
  if (a.allowed_origins !== undefined)
    warn(st, file, 'api.allowed_origins', 'not supported: the API sends no CORS headers, so browsers on other origins cannot call it (ignored)')
  if (api.enabled && !isLoopback(api.listen.host))
    warn(st, file, 'api.listen', `the API listens on ${api.listen.text}, beyond localhost, in plain HTTP: put a TLS-terminating proxy in front`)
  if (api.enabled && tokens.length === 0)
    warn(st, file, 'api.auth.tokens', `no tokens: every endpoint but /healthz and /plugins answers 401 (add {token: \${VAR}, scopes: [...]})`)

  const w = isMap(doc.webhooks) ? doc.webhooks : {}
  if (doc.webhooks !== undefined && !isMap(doc.webhooks)) err(st, file, 'webhooks', 'webhooks must be a mapping {listen, endpoints}')
  const endpoints: WebhookEndpoint[] = []
  const rawEndpoints = w.endpoints ?? []
  const names = new Set<string>()
  const paths = new Set<string>()
  if (!Array.isArray(rawEndpoints)) err(st, file, 'webhooks.endpoints', 'must be a list')
  else
    for (const [i, e] of rawEndpoints.entries()) {
      const path = `webhooks.endpoints[${i}]`
      if (!isMap(e)) {
        err(st, file, path, 'must be a mapping {name, path, plugin, secret_ref, signature_header}')
        continue
      }
      const name = typeof e.name === 'string' && e.name ? e.name : ''
      if (!name) err(st, file, `${path}.name`, 'is required')
      else if (names.has(name)) err(st, file, `${path}.name`, `duplicate endpoint name ${name}`)
      names.add(name)
      const p = typeof e.path === 'string' ? e.path : ''
      if (!/^\/[A-Za-z0-9._~\-/]*$/.test(p)) err(st, file, `${path}.path`, `must be a URL path such as /webhook/github (got ${JSON.stringify(e.path)})`)
      else if (paths.has(p)) err(st, file, `${path}.path`, `duplicate path ${p}`)
      paths.add(p)
      if (typeof e.plugin !== 'string' || !e.plugin) err(st, file, `${path}.plugin`, 'is required')
      if (typeof e.signature_header !== 'string' || !/^[A-Za-z0-9-]+$/.test(e.signature_header))
        err(st, file, `${path}.signature_header`, 'is required: the header carrying the HMAC-SHA256 signature (GitHub: X-Hub-Signature-256)')
      let secret: string | null = null
      if (e.secret_ref !== undefined) secret = ref(`${path}.secret_ref`, e.secret_ref)?.key ?? null
      else if (typeof e.secret === 'string' && e.secret !== '') secret = e.secret
      else err(st, file, path, `needs secret_ref (a tokens.yaml name) or secret: \${VAR}`)
      if (secret !== null && secret.length < MIN_TOKEN_LENGTH)
        err(st, file, path, `the secret is ${secret.length} characters; use at least ${MIN_TOKEN_LENGTH} (for example: openssl rand -hex 32)`)
      endpoints.push({
        name,
        path: p,
        plugin: String(e.plugin ?? ''),
        command: e.command === undefined ? 'handle' : String(e.command),
        secret: secret ?? '',
        signature_header: String(e.signature_header ?? ''),
        max_body_bytes: sizeAt(st, file, `${path}.max_body_size`, e.max_body_size, MIB),
        file,
      })
    }
  const webhooks: WebhooksConfig = {listen: listenAt(st, file, 'webhooks.listen', w.listen, null), endpoints}
  if (webhooks.listen && !isLoopback(webhooks.listen.host))
    warn(st, file, 'webhooks.listen', `webhooks listen on ${webhooks.listen.text}, beyond localhost, in plain HTTP: put a TLS-terminating proxy in front`)
  if (!webhooks.listen && endpoints.length > 0)
    warn(st, file, 'webhooks.listen', 'webhook endpoints are configured but webhooks.listen is not set: nothing listens')
  return {api, webhooks}
}
