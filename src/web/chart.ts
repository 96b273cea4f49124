import {type Safe, esc, html, raw} from './html.js'

/**
 * Charts as inline SVG drawn on the server: no charting library in the browser, nothing to load from
 * elsewhere, readable without script, and coloured by the stylesheet (so both themes work). Each chart has
 * a text summary for screen readers and a <title> per bar or point for the exact figure on hover.
 */

export interface Series {
  name: string
  /** A CSS class of the stylesheet (its colour). */
  cls: string
  values: number[]
}

const W = 600
const H = 140
const PAD = {l: 36, r: 6, t: 8, b: 22}

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function axis(max: number, labels: string[], every: number): string {
  const x0 = PAD.l
  const y0 = H - PAD.b
  const parts = [
    `<line class="axis" x1="${x0}" y1="${y0}" x2="${W - PAD.r}" y2="${y0}"/>`,
    `<text class="tick" x="${x0 - 4}" y="${PAD.t + 8}" text-anchor="end">${max}</text>`,
    `<text class="tick" x="${x0 - 4}" y="${y0}" text-anchor="end">0</text>`,
  ]
  const step = (W - PAD.l - PAD.r) / labels.length
  labels.forEach((l, i) => {
    if (i % every === 0) parts.push(`<text class="tick" x="${(x0 + i * step + step / 2).toFixed(1)}" y="${H - 6}" text-anchor="middle">${esc(l)}</text>`)
  })
  return parts.join('')
}

/** Stacked bars, one per label (a time bucket), one colour per series. */
export function stackedBars(title: string, labels: string[], series: Series[], o: {every?: number; unit?: string} = {}): Safe {
  const totals = labels.map((_, i) => series.reduce((n, s) => n + (s.values[i] ?? 0), 0))
  const max = niceMax(Math.max(0, ...totals))
  const step = (W - PAD.l - PAD.r) / Math.max(1, labels.length)
  const plotH = H - PAD.t - PAD.b
  const bars: string[] = []
  labels.forEach((label, i) => {
    let y = H - PAD.b
    for (const s of series) {
      const v = s.values[i] ?? 0
      if (v <= 0) continue
      const h = (v / max) * plotH
      y -= h
      const x = PAD.l + i * step + 1
      bars.push(
        `<rect class="${s.cls}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, step - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>${esc(`${label}: ${v} ${s.name}`)}</title></rect>`,
      )
    }
  })
  const sums = series.map((s) => `${s.values.reduce((a, b) => a + b, 0)} ${s.name}`).join(', ')
  return html`<figure class="chart"><figcaption>${title}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${`${title}: ${sums}`}">${raw(
    axis(max, labels, o.every ?? 1) + bars.join(''),
  )}</svg><p class="legend">${series.map((s) => html`<span class="key ${s.cls}"></span>${s.name} ${s.values.reduce((a, b) => a + b, 0)} `)}</p></figure>`
}

/** Lines over labels (p50 and p95 of durations), gaps where a value is null. */
export function lines(
  title: string,
  labels: string[],
  series: {name: string; cls: string; values: (number | null)[]}[],
  o: {every?: number; unit?: string} = {},
): Safe {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null))
  const max = niceMax(Math.max(0, ...all))
  const step = (W - PAD.l - PAD.r) / Math.max(1, labels.length)
  const plotH = H - PAD.t - PAD.b
  const paths: string[] = []
  for (const s of series) {
    let d = ''
    let pen = false
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false
        return
      }
      const x = PAD.l + i * step + step / 2
      const y = H - PAD.b - (v / max) * plotH
      d += `${pen ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)} `
      pen = true
      paths.push(
        `<circle class="${s.cls}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.5"><title>${esc(`${labels[i]}: ${s.name} ${Math.round(v)}${o.unit ?? ''}`)}</title></circle>`,
      )
    })
    if (d) paths.unshift(`<path class="line ${s.cls}" d="${d.trim()}"/>`)
  }
  return html`<figure class="chart"><figcaption>${title}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}">${raw(
    axis(Math.round(max), labels, o.every ?? 1) + paths.join(''),
  )}</svg><p class="legend">${series.map((s) => html`<span class="key ${s.cls}"></span>${s.name} `)}</p></figure>`
}
