#!/usr/bin/env node
// Release build: type-check with tsc, bundle every command with esbuild (shared code split into chunks),
// then write the oclif manifest. Bundling matters for cold start: Kysely and oclif's helpers are hundreds
// of small ES modules, and loading them one file at a time cost about 100 ms per command here.
import {execFileSync} from 'node:child_process'
import {readdirSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const bin = (name) => join(root, 'node_modules', '.bin', name)
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : name.endsWith('.ts') ? [p] : []
  })
}

rmSync(join(root, 'dist'), {recursive: true, force: true})
rmSync(join(root, 'oclif.manifest.json'), {force: true})
if (!process.argv.includes('--no-typecheck')) execFileSync(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], {cwd: root, stdio: 'inherit'})
execFileSync(
  bin('esbuild'),
  [
    ...walk(join(root, 'src', 'commands')),
    '--bundle',
    '--splitting',
    '--platform=node',
    '--target=node20',
    '--format=esm',
    `--outdir=${join(root, 'dist', 'commands')}`,
    `--outbase=${join(root, 'src', 'commands')}`,
    '--chunk-names=../chunks/[name]-[hash]',
    '--external:better-sqlite3',
    '--external:@oclif/core',
    '--minify-syntax',
    '--minify-whitespace',
    '--log-level=warning',
  ],
  {cwd: root, stdio: 'inherit'},
)
execFileSync(process.execPath, [join(root, 'scripts', 'manifest.js')], {cwd: root, stdio: 'inherit'})
