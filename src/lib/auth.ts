import {createHash, createHmac, timingSafeEqual} from 'node:crypto'

/**
 * Who may call the API: bearer tokens compared in constant time (each side hashed first, so neither the
 * length nor a prefix of a token shows in the time taken), scopes (`*`, and `rw` implies `ro`), a token
 * bucket per token, and the HMAC check of webhooks. Pure: no HTTP here.
 */

/** The API's scopes (the HTTP issue's): `*`, and `rw` implies `ro`. */
export const SCOPES = ['*', 'plugin:ro', 'plugin:rw', 'jobs:ro', 'jobs:rw', 'events:ro', 'events:rw'] as const
export type Scope = (typeof SCOPES)[number]

export interface ApiToken {
  /** tokens.yaml name, or `api.auth.tokens[i]` for a token given by `${VAR}`: what logs and limits name. */
  name: string
  token: string
  scopes: Scope[]
}

export interface RateLimit {
  requests: number
  perMs: number
}

const digest = (text: string | Buffer) => createHash('sha256').update(text).digest()

export type AuthResult = {ok: true; token: ApiToken} | {ok: false; status: 401 | 403; message: string}

export class Authenticator {
  private readonly tokens: {digest: Buffer; token: ApiToken}[]

  constructor(tokens: ApiToken[]) {
    this.tokens = tokens.map((t) => ({digest: digest(t.token), token: t}))
  }

  /** The token an `Authorization: Bearer …` header presents (every token is compared: no early exit). */
  identify(header: string | undefined): ApiToken | null {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
    if (!m?.[1]) return null
    const presented = digest(m[1])
    let found: ApiToken | null = null
    for (const t of this.tokens) if (timingSafeEqual(presented, t.digest)) found = t.token
    return found
  }

  /** 401 without a known token, 403 when it lacks every one of the scopes that would do. */
  authorize(header: string | undefined, anyOf: readonly Scope[]): AuthResult {
    const token = this.identify(header)
    if (!token)
      return {ok: false, status: 401, message: header ? 'the bearer token is not valid' : 'authentication required: send Authorization: Bearer <token>'}
    if (!anyOf.some((s) => hasScope(token.scopes, s)))
      return {ok: false, status: 403, message: `this token lacks the scope this needs (one of: ${[...new Set(['*', ...anyOf])].join(', ')})`}
    return {ok: true, token}
  }
}

/** `*` grants everything; `x:rw` grants `x:ro`. */
export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  if (granted.includes('*') || granted.includes(needed)) return true
  return needed.endsWith(':ro') && granted.includes(needed.replace(/:ro$/, ':rw') as Scope)
}

/** A token bucket per key: `requests` per `perMs`, refilled continuously, a full bucket to start. */
export class RateLimiter {
  private readonly buckets = new Map<string, {tokens: number; at: number}>()

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** 0 when the request may go, else the milliseconds until it could. */
  take(key: string): number {
    const t = this.now()
    const rate = this.limit.requests / this.limit.perMs
    const b = this.buckets.get(key) ?? {tokens: this.limit.requests, at: t}
    b.tokens = Math.min(this.limit.requests, b.tokens + (t - b.at) * rate)
    b.at = t
    this.buckets.set(key, b)
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.ceil((1 - b.tokens) / rate)
  }
}

/**
 * A webhook signature: HMAC-SHA256 of the raw body with the secret, hex, with or without a `sha256=` prefix
 * (GitHub's X-Hub-Signature-256). Compared in constant time.
 */
export function verifySignature(body: Buffer, header: string | undefined, secret: string): boolean {
  if (!header) return false
  const hex = header.trim().replace(/^sha256=/i, '')
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return false
  const expected = createHmac('sha256', secret).update(body).digest()
  return timingSafeEqual(expected, Buffer.from(hex, 'hex'))
}

/** The signature header a sender computes (tests, docs). */
export function signBody(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}
