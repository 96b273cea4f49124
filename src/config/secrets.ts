/**
 * Secrets of the config: which keys hold them, masking a document for display and snapshots, and removing
 * their values from any text (logs, stored plugin output, event payloads). An engine-wide concern: the
 * loader collects the values, and the logger, the store and the router apply them.
 */

/** Key names whose values are secrets: passwords, tokens, `*_key` names (aws_access_key_id, signing_key), auth. */
const SECRET_KEY =
  /(^|[_-])pass($|[_-])|passw(or)?d|passphrase|secret|token|credential|auth|bearer|signing|private|(^|[_-])(api)?key($|[_-])|apikey|(^|[_-])dsn$/i
/** The password of a URL or DSN: `scheme://user:PASSWORD@host`. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)([^\s@/]+)@/gi
/** Secrets shorter than this are not searched for in text (they would mask ordinary words). */
export const MIN_SECRET = 4

export const isSecretKey = (key: string) => SECRET_KEY.test(key)

/**
 * Keys that name or point at a secret rather than hold one, even inside a secret block: `secret_ref: hook`,
 * a tokens.yaml entry's `name` and `scopes`, a webhook's `signature_header`. Masked, they were removed from
 * every log line as if secret ("webhooks listening" logged as "web***s listening").
 */
const LABEL_KEY = /(^|[_-])ref$|^name$|^scopes$|(^|[_-])header$/i
/** Whether values under `key` are secret, given whether its parent's were. */
const secretUnder = (key: string, parentSecret: boolean) => !LABEL_KEY.test(key) && (parentSecret || isSecretKey(key))

/**
 * Mask secrets at any depth: every value under a secret-looking key (strings in its lists and maps too),
 * and the password of every URL or DSN.
 */
export function maskSecrets(value: unknown, underSecret = false): unknown {
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, underSecret))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, maskSecrets(v, secretUnder(k, underSecret))]))
  }
  if (underSecret && value != null) return '***'
  if (typeof value === 'string') return value.replace(URL_PASSWORD, '$1***@')
  return value
}

/** The secret values at any depth (what `redact` removes from logs and stored output). */
export function secretValues(value: unknown, out: string[] = [], underSecret = false): string[] {
  if (Array.isArray(value)) for (const v of value) secretValues(v, out, underSecret)
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) secretValues(v, out, secretUnder(k, underSecret))
  } else if (typeof value === 'string' || typeof value === 'number') {
    const text = String(value)
    if (underSecret && text.length >= MIN_SECRET) out.push(text)
    for (const [, , password = ''] of text.matchAll(URL_PASSWORD)) if (password.length >= MIN_SECRET) out.push(password, safeDecode(password))
  }
  return [...new Set(out)]
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Replace every occurrence of a secret with *** (JSON-escaped forms too); longest first. */
export function redact(text: string, secrets: string[]): string
export function redact(text: string | null, secrets: string[]): string | null
export function redact(text: string | null, secrets: string[]): string | null {
  if (text === null || secrets.length === 0) return text
  let out = text
  for (const s of secrets) {
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) if (form && out.includes(form)) out = out.split(form).join('***')
  }
  return out
}

/** `redact` over every string of a value. */
export function redactDeep(value: unknown, secrets: string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets))
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactDeep(v, secrets)]))
  return typeof value === 'string' ? redact(value, secrets) : value
}
