#!/usr/bin/env node
// Runs the tests with Node's own test runner (TypeScript through tsx).
//   node scripts/test.js               every test file under test/
//   node scripts/test.js --fast        the fast tier: files that run in process (no build needed)
//   node scripts/test.js SUBSTRING...  only the files whose path contains one of the substrings
//   --store sqlite|postgres             only that store's pass (default: both)
// Every file runs on SQLite, but those that say `// stores: postgres` (about many engines on one database).
// The files that say `// stores: sqlite, postgres` run a second time, and those, against a throwaway
// PostgreSQL cluster (scripts/pg-cluster.js: initdb on a temp directory, a free port, stopped at
// the end) with DUCTILE_TEST_STORE=postgres: one suite over both stores (test/helpers/store.ts).
// Files named *.e2e.test.ts start processes or threads (the built CLI, engines, plugins, sqlite3, tmux) or
// wait on real time; every other *.test.ts runs in process and is part of the fast tier.
import {spawnSync} from 'node:child_process'
import {readFileSync, readdirSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'

const root = new URL('..', import.meta.url).pathname
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (name === 'fixtures' || name === 'node_modules') return []
    return statSync(p).isDirectory() ? walk(p) : name.endsWith('.test.ts') ? [p] : []
  })
}
const args = process.argv.slice(2)
const fast = args.includes('--fast')
const storeAt = args.indexOf('--store')
const only = storeAt >= 0 ? args[storeAt + 1] : null
const filters = args.filter((a, i) => a !== '--fast' && (storeAt < 0 || (i !== storeAt && i !== storeAt + 1)))
const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => !fast || !f.endsWith('.e2e.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error('no test files match')
  process.exit(1)
}
const env = {...process.env, NODE_ENV: 'test', OCLIF_SKIP_NEW_VERSION_CHECK: 'true', FORCE_COLOR: '0'}
const run = (list, extra = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...list], {
    cwd: root,
    stdio: 'inherit',
    env: {...env, ...extra},
  }).status ?? 1

const stores = (f) => /^\/\/ stores: (.*)$/m.exec(readFileSync(join(root, f), 'utf8'))?.[1] ?? 'sqlite'
let status = 0
const sqliteFiles = files.filter((f) => stores(f).includes('sqlite'))
if (only !== 'postgres' && sqliteFiles.length > 0) status = run(sqliteFiles)
const both = files.filter((f) => stores(f).includes('postgres'))
if (only !== 'sqlite' && both.length > 0) {
  const {clusterAvailable, startCluster} = await import('./pg-cluster.js')
  if (!clusterAvailable()) {
    console.error('PostgreSQL is not installed (initdb, pg_ctl): `apt-get install postgresql`, or pass --store sqlite')
    process.exit(1)
  }
  // Durability is not what these tests are about: a crash of the test machine loses nothing anyone needs.
  const cluster = await startCluster({settings: {fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off'}})
  // Ctrl-C or a CI timeout stops the cluster too (an exit handler alone does not run on a signal).
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => process.exit(130))
  try {
    const pgEnv = {DUCTILE_TEST_STORE: 'postgres', DUCTILE_TEST_PG: cluster.url}
    const t = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test', 'helpers', 'pg-template.ts')], {
      cwd: root,
      stdio: 'inherit',
      env: {...env, ...pgEnv},
    })
    if (t.status !== 0) throw new Error('could not create the PostgreSQL template database')
    console.log(`\n# PostgreSQL pass (${both.length} files, ${cluster.url})\n`)
    status = run(both, pgEnv) || status
  } finally {
    cluster.stop()
  }
}
process.exit(status)
