/**
 * Payloads nest at most this deep (objects and arrays). Deeper ones are refused at enqueue: encoding a
 * request that holds one overflows the stack (V8's JSON.stringify recurses), and no real event needs it.
 */
export const MAX_PAYLOAD_DEPTH = 64

/** How deep a JSON value nests (a scalar is 0, {} or [] is 1), counted without recursion; stops past `limit`. */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0
  const stack: [unknown, number][] = [[value, 0]]
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [v, d] = top
    if (v === null || typeof v !== 'object') continue
    const depth = d + 1
    if (depth > deepest) deepest = depth
    if (deepest > limit) return deepest
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([child, depth])
  }
  return deepest
}

/** The problem with a payload's depth in words, or null. */
export function payloadDepthProblem(value: unknown): string | null {
  const depth = jsonDepth(value, MAX_PAYLOAD_DEPTH)
  return depth > MAX_PAYLOAD_DEPTH ? `the payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels (objects and arrays)` : null
}

/** A JSON object (a YAML mapping): not null, not an array. */
export const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Stored JSON text parsed, or `fallback` when there is none or it does not parse (text written by a plugin or an older build). */
export function parseJsonOr<T>(text: string | null | undefined, fallback: T): unknown {
  if (!text) return fallback
  try {
    return JSON.parse(text)
  } catch {
    return fallback
  }
}
