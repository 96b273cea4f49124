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
