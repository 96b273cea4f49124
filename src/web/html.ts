/**
 * HTML for the web Overwatch, built as strings on the server. Every value that reaches a page goes through
 * `esc` (the `html` tag does it for each interpolation): plugins are untrusted, and what they print (stderr,
 * results, errors, payloads, fact and state JSON) is shown as text, never as markup. Control characters and
 * the bidirectional overrides that could disguise text are shown as visible escapes, as the CLI shows them.
 */

// C0 but tab and newline, DEL, C1, and the bidi/line-separator marks that reorder or hide text.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const ENTITIES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}

/** A value as HTML text (attribute-safe too): controls made visible, markup characters as entities. */
export function esc(value: unknown): string {
  if (value === null || value === undefined) return ''
  const text = String(value).replace(CONTROL, (c) => {
    const code = c.charCodeAt(0)
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c)
}

/** Markup we built: passed through `html` without escaping. */
export class Safe {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html
  }
}

export const raw = (s: string) => new Safe(s)

type Part = Safe | string | number | boolean | null | undefined | Part[]

function render(v: Part): string {
  if (v instanceof Safe) return v.html
  if (Array.isArray(v)) return v.map(render).join('')
  if (v === false || v === null || v === undefined) return ''
  return esc(v)
}

/** A template of markup: interpolated values are escaped unless they are `Safe` (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: Part[]): Safe {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) out += render(values[i] as Part) + (strings[i + 1] ?? '')
  return new Safe(out)
}

/** A URL's query from the set values (the filters of a listing). */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** Pretty JSON when the text is JSON, else the text (both escaped by the caller's template). */
export function pretty(text: string | null | undefined): string {
  if (text === null || text === undefined) return ''
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    return text
  }
}

/** A stored timestamp (UTC, our layout) as shown: the same text, with its zone. */
export function when(ts: string | null | undefined): string {
  return ts ? `${ts.slice(0, 19)}Z` : '-'
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-'
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/** A status as a badge (its colour from the stylesheet, its text always there: colour is never the only sign). */
export function badge(status: string | null | undefined): Safe {
  return html`<span class="badge s-${(status ?? 'none').replace(/[^a-z_]/g, '')}">${status ?? '-'}</span>`
}
