import {randomBytes, timingSafeEqual} from 'node:crypto'

import type {ApiToken, Scope} from '../config/types.js'
import {Authenticator, hasScope} from '../lib/auth.js'

/**
 * Who may do what in the web Overwatch. An operator signs in with one of the API's tokens (api.auth.tokens,
 * the HTTP issue's scopes); the server keeps the session (the token's name and scopes, never the token) and
 * gives the browser an opaque id in an HttpOnly, SameSite=Strict cookie. Every action is a POST that must
 * carry the session's CSRF token and, when the browser sends one, an Origin of this very host.
 */

export const COOKIE = 'ductile_session'
const TTL_MS = 12 * 3_600_000

export interface Session {
  id: string
  name: string
  scopes: Scope[]
  csrf: string
  expires: number
}

export class Sessions {
  private readonly auth: Authenticator
  private readonly byId = new Map<string, Session>()

  constructor(
    tokens: ApiToken[],
    private readonly now: () => number = Date.now,
  ) {
    this.auth = new Authenticator(tokens)
  }

  /** A new session for a valid token, or null (the caller answers as for any wrong token). */
  signIn(token: string): Session | null {
    const t = this.auth.identify(`Bearer ${token.trim()}`)
    if (!t) return null
    this.sweep()
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      name: t.name,
      scopes: t.scopes,
      csrf: randomBytes(24).toString('base64url'),
      expires: this.now() + TTL_MS,
    }
    this.byId.set(s.id, s)
    return s
  }

  signOut(id: string | undefined): void {
    if (id) this.byId.delete(id)
  }

  /** The session a cookie header names, if it is known and not expired. */
  fromCookie(header: string | undefined): Session | null {
    const id = cookieValue(header, COOKIE)
    if (!id) return null
    const s = this.byId.get(id)
    if (!s) return null
    if (s.expires <= this.now()) {
      this.byId.delete(id)
      return null
    }
    return s
  }

  private sweep(): void {
    const t = this.now()
    for (const [id, s] of this.byId) if (s.expires <= t) this.byId.delete(id)
  }
}

export function may(s: Session | null, scope: Scope): boolean {
  return Boolean(s && hasScope(s.scopes, scope))
}

/** The CSRF token a form sent matches its session's (constant time). */
export function csrfOk(s: Session, sent: unknown): boolean {
  if (typeof sent !== 'string') return false
  const a = Buffer.from(sent)
  const b = Buffer.from(s.csrf)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A browser's Origin, when it sends one, names the host it asked: a form on another site is refused. */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin) return true
  try {
    return new URL(origin).host === host
  } catch {
    return false
  }
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return v.join('=')
  }
  return undefined
}
