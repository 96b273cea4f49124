/**
 * `npm run bench [-- section ...]`: builds the 1M-row database once (bench/data/bench.db, `--regenerate` to
 * rebuild), then runs the sections (default: all) and prints each figure next to its goal. Ratios compare
 * against baselines measured in the same run, because the machines are noisy.
 */
import {existsSync, mkdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {generate} from './generate.js'
import {benchColdStart, benchQueries} from './read.js'
import {line} from './util.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dbPath = process.env.BENCH_DB ?? join(root, 'bench', 'data', 'bench.db')
const args = process.argv.slice(2)
const sections = args.filter((a) => !a.startsWith('--'))
const want = (s: string) => sections.length === 0 || sections.includes(s)

export type Section = (ctx: {dbPath: string; root: string}) => Promise<void> | void

async function main() {
  if (!existsSync(dbPath) || args.includes('--regenerate')) {
    mkdirSync(dirname(dbPath), {recursive: true})
    console.log(`Generating ${dbPath} …`)
    const g = generate(dbPath)
    line('generate 1M job_log rows', `${g.seconds.toFixed(1)} s`, '< 60 s', g.seconds < 60)
  }
  console.log(`Database: ${dbPath}`)

  if (want('read')) {
    console.log('\n## Read commands: warm median of their queries')
    for (const f of benchQueries(dbPath)) {
      line(f.command, `${f.medianMs.toFixed(3)} ms`, '<= 5 ms, index search', f.medianMs <= 5 && !f.fullScan)
      if (f.fullScan) console.log(`      plan: ${f.plans.join(' | ')}`)
    }
    const c = benchColdStart(dbPath)
    console.log(`\n## Cold start (median of 15; baseline node -e "require('better-sqlite3')" = ${c.baselineMs.toFixed(0)} ms)`)
    line('ductile jobs status', `${c.jobsStatusMs.toFixed(0)} ms ×${c.jobsStatusRatio.toFixed(2)}`, '<= 2.5 × baseline', c.jobsStatusRatio <= 2.5)
    line('ductile facts plugin-07', `${c.factsMs.toFixed(0)} ms ×${c.factsRatio.toFixed(2)}`, '<= 2.5 × baseline', c.factsRatio <= 2.5)
  }

  for (const name of ['prune', 'engine', 'watch', 'concurrency']) {
    if (!want(name)) continue
    const file = join(root, 'bench', `${name}.ts`)
    if (!existsSync(file)) continue
    const mod = (await import(file)) as {default: Section}
    await mod.default({dbPath, root})
  }
}

await main()
