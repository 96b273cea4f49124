import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'

import {referenceQueries as parseReference} from '../../bench/reference.js'

/** The user's database reference (a copy of ../shared/reference/database-reference.txt). */
export const REFERENCE = readFileSync(new URL('../fixtures/database-reference.txt', import.meta.url), 'utf8')

/** The reference's queries, verbatim, keyed by the `-- comment` line above each. */
export const referenceQueries = (): Map<string, string> => parseReference(REFERENCE)

/** Run SQL in the real sqlite3 shell, as an operator pastes it; rows as objects. */
export function sqlite3(path: string, sql: string): Record<string, unknown>[] {
  const out = execFileSync('sqlite3', ['-json', path, sql], {encoding: 'utf8'})
  return out.trim() === '' ? [] : JSON.parse(out)
}

/** The sqlite3 shell's plan of a query (EXPLAIN QUERY PLAN), one line per step without the tree drawing. */
export function sqlite3Plan(path: string, sql: string): string[] {
  const out = execFileSync('sqlite3', [path, `EXPLAIN QUERY PLAN ${sql}`], {encoding: 'utf8'})
  return out
    .split('\n')
    .map((l) => l.replace(/^[\s|`-]+/, '').trim())
    .filter((l) => l && l !== 'QUERY PLAN')
}

/** The README's PostgreSQL form of the reference's queries ("The database reference on PostgreSQL"). */
export const pgReferenceQueries = (): Map<string, string> => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const at = readme.indexOf('### The database reference on PostgreSQL')
  const start = readme.indexOf('```sql\n', at)
  const end = readme.indexOf('```\n', start + 7)
  if (at < 0 || start < 0 || end < 0) throw new Error('README.md has no PostgreSQL reference block')
  return parseReference(readme.slice(start + 7, end))
}

/** Run SQL in the real psql, as an operator pastes it (wrapped only to get JSON back); rows as objects. */
export function psql(url: string, sql: string): Record<string, unknown>[] {
  const out = execFileSync(
    'psql',
    [url, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', `SELECT coalesce(json_agg(r), '[]') FROM (${sql.replace(/;\s*$/, '')}) r`],
    {
      encoding: 'utf8',
    },
  )
  return JSON.parse(out)
}
