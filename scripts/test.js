#!/usr/bin/env node
// Runs every test file under test/ with Node's own test runner (TypeScript through tsx).
// Usage: node scripts/test.js [substring ...] to run only the files whose path contains a substring.
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
const filters = process.argv.slice(2)
const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error('no test files match')
  process.exit(1)
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  {cwd: root, stdio: 'inherit', env: {...process.env, NODE_ENV: 'test', OCLIF_SKIP_NEW_VERSION_CHECK: 'true', FORCE_COLOR: '0'}},
)
process.exit(r.status ?? 1)
