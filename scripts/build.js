#!/usr/bin/env node
// Release build: type-check with tsc, bundle the entry (src/main.ts) and every command with esbuild (shared
// code, @oclif/core included, split into chunks), then write the oclif manifest. Bundling matters for cold
// start: Kysely and oclif are hundreds of small modules, and loading them one file at a time cost about
// 100 ms per command here. typescript and tsx stay external: oclif only reaches for them in development.
//
// The build goes beside dist/ and is swapped in by two renames, so a CLI call in another shell during a build
// (an operator's, cron's, a test's) runs the old tree or the new one, never none. Chunks of earlier builds from
// the last day are copied into the new one: a process started on one (an engine) still finds what it imports
// lazily.
import {execFileSync} from 'node:child_process'
import {copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const bin = (name) => join(root, 'node_modules', '.bin', name)
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : name.endsWith('.ts') ? [p] : []
  })
}

const dist = join(root, 'dist')
const next = join(root, `.dist-next-${process.pid}`)
const old = join(root, `.dist-old-${process.pid}`)
rmSync(next, {recursive: true, force: true})
// Type-check the sources, the tests and the benchmarks (tsx runs the tests without checking types). The
// stricter check of src/ alone (noUncheckedIndexedAccess) is part of `npm run lint`.
if (!process.argv.includes('--no-typecheck')) execFileSync(bin('tsc'), ['-p', 'tsconfig.test.json'], {cwd: root, stdio: 'inherit'})
execFileSync(
  bin('esbuild'),
  [
    ...walk(join(root, 'src', 'commands')),
    join(root, 'src', 'main.ts'),
    // Code that runs in its own thread or process, loaded by path (src/lib/assets.ts finds them).
    join(root, 'src', 'engine', 'checkpoint-thread.js'),
    join(root, 'src', 'engine', 'helpers', 'spawner-node.js'),
    '--bundle',
    '--splitting',
    '--platform=node',
    '--target=node20',
    '--format=esm',
    `--outdir=${next}`,
    `--outbase=${join(root, 'src')}`,
    '--chunk-names=chunks/[name]-[hash]',
    '--external:better-sqlite3',
    '--external:typescript',
    '--external:tsx',
    "--banner:js=import {createRequire as __ductileCreateRequire} from 'node:module'; const require = __ductileCreateRequire(import.meta.url);",
    '--minify-syntax',
    '--minify-whitespace',
    '--log-level=warning',
  ],
  {cwd: root, stdio: 'inherit'},
)
// The Python spawn helper is not bundled: it is copied to the same path under the build.
mkdirSync(join(next, 'engine', 'helpers'), {recursive: true})
copyFileSync(join(root, 'src', 'engine', 'helpers', 'spawner.py'), join(next, 'engine', 'helpers', 'spawner.py'))
const chunks = join(dist, 'chunks')
if (existsSync(chunks)) {
  for (const name of readdirSync(chunks)) {
    const to = join(next, 'chunks', name)
    const from = join(chunks, name)
    if (!existsSync(to) && Date.now() - statSync(from).mtimeMs < 86_400_000) cpSync(from, to, {preserveTimestamps: true})
  }
}
if (existsSync(dist)) renameSync(dist, old)
renameSync(next, dist)
rmSync(old, {recursive: true, force: true})
execFileSync(process.execPath, [join(root, 'scripts', 'manifest.js')], {cwd: root, stdio: 'inherit'})
