/**
 * The `if:` expressions of pipelines and steps: a small, safe language over the event's `payload` and the
 * `context` (baggage). Paths (`payload.temp`, `context.weather.city`), string/number/boolean/null literals,
 * `== != < <= > >=`, `&& || !`, parentheses, and `exists(path)`. Parsed once at load, so a bad expression
 * is a config error with its position.
 */

type Node = {k: 'lit'; v: unknown} | {k: 'path'; p: string[]} | {k: 'not'; e: Node} | {k: 'bin'; op: string; l: Node; r: Node} | {k: 'exists'; p: string[]}

export interface Expr {
  source: string
  /** The paths it reads (`payload.temp`, `context.weather.city`), in order of first use: what a skip reports. */
  paths: string[]
  eval(scope: Record<string, unknown>): boolean
}

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(==|!=|<=|>=|&&|\|\||[<>!()])|([A-Za-z_][A-Za-z0-9_.-]*))/y

function tokenize(src: string): string[] {
  const out: string[] = []
  TOKEN.lastIndex = 0
  let pos = 0
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break
    TOKEN.lastIndex = pos
    const m = TOKEN.exec(src)
    if (!m) {
      // The position of the character itself, not of the blanks before it.
      const rest = src.slice(pos)
      throw new Error(`unexpected "${rest.trim()[0]}" at position ${pos + rest.length - rest.trimStart().length + 1}`)
    }
    out.push(m[1] ?? m[2] ?? m[3] ?? m[4] ?? '')
    pos = TOKEN.lastIndex
  }
  return out
}

export function parseExpr(source: string): Expr {
  const toks = tokenize(source)
  let i = 0
  const peek = () => toks[i] ?? ''
  /** The next token; the end of the expression is an error wherever a token is needed. */
  const take = (t?: string): string => {
    const v = toks[i++]
    if (v === undefined || (t !== undefined && v !== t))
      throw new Error(t === undefined ? 'unexpected end of expression' : `expected "${t}" but found ${v === undefined ? 'the end' : `"${v}"`}`)
    return v
  }
  const path = (t: string) => {
    const p = t.split('.')
    if (p[0] !== 'payload' && p[0] !== 'context') throw new Error(`unknown name "${t}": paths start with payload. or context.`)
    return p
  }
  const primary = (): Node => {
    const t = take()
    if (t === '(') {
      const e = or()
      take(')')
      return e
    }
    if (t === '!') return {k: 'not', e: primary()}
    if (/^\d/.test(t)) return {k: 'lit', v: Number(t)}
    if (t[0] === '"' || t[0] === "'") return {k: 'lit', v: t.slice(1, -1).replace(/\\(.)/g, '$1')}
    if (t === 'true' || t === 'false') return {k: 'lit', v: t === 'true'}
    if (t === 'null') return {k: 'lit', v: null}
    if (t === 'exists') {
      take('(')
      const p = path(take())
      take(')')
      return {k: 'exists', p}
    }
    if (/^[A-Za-z_]/.test(t)) return {k: 'path', p: path(t)}
    throw new Error(`unexpected "${t}"`)
  }
  const cmp = (): Node => {
    let l = primary()
    while (['==', '!=', '<', '<=', '>', '>='].includes(peek())) {
      const op = take()
      l = {k: 'bin', op, l, r: primary()}
    }
    return l
  }
  const and = (): Node => {
    let l = cmp()
    while (peek() === '&&') {
      take()
      l = {k: 'bin', op: '&&', l, r: cmp()}
    }
    return l
  }
  const or = (): Node => {
    let l = and()
    while (peek() === '||') {
      take()
      l = {k: 'bin', op: '||', l, r: and()}
    }
    return l
  }
  if (toks.length === 0) throw new Error('empty expression')
  const root = or()
  if (i < toks.length) throw new Error(`unexpected "${toks[i]}" after the expression`)
  const paths: string[] = []
  const collect = (n: Node): void => {
    if (n.k === 'path' || n.k === 'exists') {
      const p = n.p.join('.')
      if (!paths.includes(p)) paths.push(p)
    } else if (n.k === 'not') collect(n.e)
    else if (n.k === 'bin') {
      collect(n.l)
      collect(n.r)
    }
  }
  collect(root)
  return {source, paths, eval: (scope) => truthy(evaluate(root, scope))}
}

export function getPath(scope: Record<string, unknown>, p: string[]): unknown {
  let v: unknown = scope
  for (const k of p) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[k]
  }
  return v
}

function truthy(v: unknown): boolean {
  return !(v === undefined || v === null || v === false || v === 0 || v === '')
}

function evaluate(n: Node, scope: Record<string, unknown>): unknown {
  switch (n.k) {
    case 'lit':
      return n.v
    case 'path':
      return getPath(scope, n.p)
    case 'exists':
      return getPath(scope, n.p) !== undefined
    case 'not':
      return !truthy(evaluate(n.e, scope))
    case 'bin': {
      if (n.op === '&&') return truthy(evaluate(n.l, scope)) && truthy(evaluate(n.r, scope))
      if (n.op === '||') return truthy(evaluate(n.l, scope)) || truthy(evaluate(n.r, scope))
      const l = evaluate(n.l, scope)
      const r = evaluate(n.r, scope)
      switch (n.op) {
        case '==':
          return JSON.stringify(l) === JSON.stringify(r)
        case '!=':
          return JSON.stringify(l) !== JSON.stringify(r)
        case '<':
          return (l as number) < (r as number)
        case '<=':
          return (l as number) <= (r as number)
        case '>':
          return (l as number) > (r as number)
        case '>=':
          return (l as number) >= (r as number)
      }
    }
  }
  return false
}
