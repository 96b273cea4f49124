import {maskSecrets} from '../config/secrets.js'

/** One difference between two configs, at a key path such as `plugins.weather.schedules[0].every`. */
export interface ConfigChange {
  path: string
  change: 'added' | 'removed' | 'changed'
  before?: unknown
  after?: unknown
}

/** Leaf values by key path (objects and arrays are walked; an empty one is a leaf). */
function flatten(value: unknown, path: string, out: Map<string, unknown>): Map<string, unknown> {
  if (Array.isArray(value) && value.length) for (const [i, v] of value.entries()) flatten(v, `${path}[${i}]`, out)
  else if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length)
    for (const [k, v] of Object.entries(value)) flatten(v, path ? `${path}.${k}` : k, out)
  else out.set(path, value)
  return out
}

/**
 * What changed from `a` to `b`, in key-path order. Both are masked again first (snapshots are stored masked;
 * this holds for a row written by an older build too), so a secret shows as `***` and a change of its value
 * only in the snapshots' config hashes.
 */
export function diffConfigs(a: unknown, b: unknown): ConfigChange[] {
  const before = flatten(maskSecrets(a), '', new Map())
  const after = flatten(maskSecrets(b), '', new Map())
  const out: ConfigChange[] = []
  for (const path of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const x = before.get(path)
    const y = after.get(path)
    if (!before.has(path)) out.push({path, change: 'added', after: y})
    else if (!after.has(path)) out.push({path, change: 'removed', before: x})
    else if (JSON.stringify(x) !== JSON.stringify(y)) out.push({path, change: 'changed', before: x, after: y})
  }
  return out
}
