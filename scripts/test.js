#!/usr/bin/env node
// Runs the tests with Node's own test runner (TypeScript through tsx).
//   node scripts/test.js               every test file under test/
//   node scripts/test.js --fast        the fast tier: files that run in process (no build needed)
//   node scripts/test.js SUBSTRING...  only the files whose path contains one of the substrings
// Files named *.e2e.test.ts start processes or threads (the built CLI, engines, plugins, sqlite3, tmux) or
// wait on real time; every other *.test.ts runs in process and is part of the fast tier.
import {spawnSync} from 'node:child_process'
import {readdirSync, statSync} from 'node:fs'
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
const filters = args.filter((a) => a !== '--fast')
const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => !fast || !f.endsWith('.e2e.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error('no test files match')
  process.exit(1)
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: {...process.env, NODE_ENV: 'test', OCLIF_SKIP_NEW_VERSION_CHECK: 'true', FORCE_COLOR: '0'},
})
process.exit(r.status ?? 1)
