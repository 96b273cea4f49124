/** Whether a --db / DUCTILE_DB / state.url value names a PostgreSQL database rather than a file. */
export function isPgUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target.trim())
}

/** The URL as messages show it: without its password (nor a password= parameter). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = ''
    for (const k of [...u.searchParams.keys()]) if (/pass/i.test(k)) u.searchParams.delete(k)
    return u.toString().replace(/:@/, '@')
  } catch {
    return 'postgres://(an unparsable URL)'
  }
}

/** What a message may show of a --db value: a path as it is, a URL without its password. */
export function displayTarget(target: string): string {
  return isPgUrl(target) ? displayUrl(target) : target
}
