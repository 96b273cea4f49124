import {visibleControl} from '../cli/render.js'

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
  const text = String(value).replace(CONTROL, visibleControl)
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

/** A stored timestamp (UTC, our layout) as shown: the same text, with its zone. */
export function when(ts: string | null | undefined): string {
  return ts ? `${ts.slice(0, 19)}Z` : '-'
}

/** A status as a badge (its colour from the stylesheet, its text always there: colour is never the only sign). */
export function badge(status: string | null | undefined): Safe {
  return html`<span class="badge s-${(status ?? 'none').replace(/[^a-z_]/g, '')}">${status ?? '-'}</span>`
}
