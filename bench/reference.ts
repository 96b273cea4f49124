/**
 * The user's database reference, pasted into the sqlite3 shell as an operator would: each query's warm time
 * on the 1M-row database (goal <= 5 ms). Two edits, so that each asks about rows the bench has: the plugin
 * names become one of the bench's plugins, and `datetime('now', …)` counts back from the newest job_log row
 * instead of from now (the file may be days old, and then "the last 24 hours" would be empty).
 */
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {median} from './read.js'
import type {Section} from './run.js'
import {line} from './util.js'

/** The reference's queries, verbatim, keyed by the `-- comment` line above each. */
export function referenceQueries(text: string): Map<string, string> {
  const out = new Map<string, string>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]?.startsWith('-- ') || !lines[i + 1]?.startsWith('SELECT')) continue
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      body.push(lines[j] ?? '')
      if (lines[j]?.trimEnd().endsWith(';')) break
    }
    out.set((lines[i] ?? '').slice(3).trim(), body.join('\n'))
    i = j
  }
  return out
}

/**
 * A query's warm time in the sqlite3 shell: one shell runs it once, another once plus `runs` more times; the
 * difference of their wall times over `runs` (the shell's own .timer rounds to whole milliseconds).
 */
export function timeInSqlite3(path: string, sql: string, runs = 30): number {
  const shell = (n: number) => {
    const t = process.hrtime.bigint()
    execFileSync('sqlite3', [path], {input: `.output /dev/null\n${`${sql}\n`.repeat(n)}`, encoding: 'utf8'})
    return Number(process.hrtime.bigint() - t) / 1e6
  }
  const samples: number[] = []
  for (let i = 0; i < 3; i++) samples.push((shell(1 + runs) - shell(1)) / runs)
  return Math.max(0, median(samples))
}

const section: Section = ({dbPath, root}) => {
  console.log("\n## The reference's SQL in the sqlite3 shell (warm, per query: median of 3 × 30 runs)")
  const text = readFileSync(join(root, 'test/fixtures/database-reference.txt'), 'utf8')
  const anchor = execFileSync('sqlite3', [dbPath, 'SELECT MAX(completed_at) FROM job_log'], {encoding: 'utf8'}).trim()
  const queries = new Map(
    [...referenceQueries(text)].map(([name, sql]) => [
      name,
      sql.replaceAll(/'(my-plugin|file_watch)'/g, "'plugin-07'").replaceAll("datetime('now', ", `datetime('${anchor}', `),
    ]),
  )
  for (const [name, sql] of queries) {
    const ms = timeInSqlite3(dbPath, sql)
    line(name.slice(0, 44), `${ms.toFixed(2)} ms`, '<= 5 ms', ms <= 5)
  }
}

export default section
