#!/usr/bin/env node
// Release build: type-check with tsc, then bundle with esbuild:
// - dist/cli.cjs: the CLI (src/main.ts, every command, @oclif/core, Kysely, …) in one CommonJS file. oclif finds
//   the commands in its COMMANDS export (the "explicit" strategy in package.json). One CommonJS file, because
//   bin/run.js can then start it from V8's code cache (see there): cold start matters, cron and shell loops run
//   ductile often, and parsing the bundle was a third of a read command's time.
// - dist/engine/checkpoint-thread.js, dist/engine/helpers/spawner-node.js, dist/schema/pg-thread.js: code that runs in its own thread or
//   process, loaded by path (src/assets.ts finds them); ESM, each on its own.
// - dist/http/thread.js: the HTTP listeners' thread, bundled on its own (fastify stays in node_modules).
// typescript and tsx stay external: oclif only reaches for them in development.
//
// The build goes beside dist/ and is swapped in by two renames, so a CLI call in another shell during a build
// (an operator's, cron's, a test's) runs the old tree or the new one, never none.
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'
import {buildSync} from 'esbuild'

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

const common = {bundle: true, platform: 'node', target: 'node20', minifySyntax: true, minifyWhitespace: true, logLevel: 'warning'}

// Command ids as oclif derives them from paths: commands/jobs/status.ts is "jobs:status", facts/index.ts "facts".
const commandsDir = join(root, 'src', 'commands')
const commands = walk(commandsDir)
  .sort()
  .map((file) => {
    const id = relative(commandsDir, file)
      .replace(/\.ts$/, '')
      .replace(/(^|\/)index$/, '')
      .split('/')
      .join(':')
    return {id, file}
  })
// Each command is a getter that requires its module: esbuild then initialises a command's modules (and theirs)
// on first use, so `jobs status` does not run the top level of the engine, the YAML parser or prom-client.
// oclif reads only the command it runs (the manifest lists them all).
const entry = [
  "export {run} from './src/main.ts'",
  'export const COMMANDS = {}',
  ...commands.map(
    (c) => `Object.defineProperty(COMMANDS, ${JSON.stringify(c.id)}, {enumerable: true, get: () => require('./${relative(root, c.file)}').default})`,
  ),
].join('\n')
buildSync({
  ...common,
  stdin: {contents: entry, resolveDir: root, sourcefile: 'cli-entry.ts', loader: 'ts'},
  format: 'cjs',
  outfile: join(next, 'cli.cjs'),
  // fastify is required from node_modules when an engine listens: the CLI's bundle stays as small as it was.
  external: ['better-sqlite3', 'typescript', 'tsx', 'fastify'],
  alias: {'string-width': './scripts/string-width-ascii.cjs'},
  // import.meta does not exist in CommonJS: its one use (src/assets.ts) gets the bundle's own URL.
  define: {'import.meta.url': '__ductileImportMetaUrl'},
  banner: {
    js: "const __ductileImportMetaUrl = require('node:url').pathToFileURL(__filename).href; const __ductileImport = globalThis.__ductileImport ?? ((s) => import /* as is */ (s));",
  },
})
// Compiled from V8's code cache (bin/run.js), the bundle cannot call import() on Node 20: a script from the
// cache loses the callback that dynamic import needs (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING; oclif imports
// its help and ESM plugins that way). So the bundle's import() calls go through bin/run.js's own import(),
// and where nothing provides one (scripts/manifest.js requires the bundle), through the bundle's.
const cli = join(next, 'cli.cjs')
const DYNAMIC_IMPORT = /(?<![\w$."'`])import\(/g
const code = readFileSync(cli, 'utf8')
const calls = code.match(DYNAMIC_IMPORT)?.length ?? 0
if (calls === 0) throw new Error('build: no import() in dist/cli.cjs to route (did the bundle change shape?)')
writeFileSync(cli, code.replace(DYNAMIC_IMPORT, '__ductileImport('))
buildSync({
  ...common,
  entryPoints: [
    join(root, 'src', 'engine', 'checkpoint-thread.js'),
    join(root, 'src', 'engine', 'helpers', 'spawner-node.js'),
    join(root, 'src', 'schema', 'pg-thread.js'),
  ],
  format: 'esm',
  outdir: next,
  outbase: join(root, 'src'),
  // pg (the PostgreSQL connection's thread) is required from node_modules, as better-sqlite3 is.
  external: ['better-sqlite3', 'pg'],
  banner: {js: "import {createRequire as __ductileCreateRequire} from 'node:module'; const require = __ductileCreateRequire(import.meta.url);"},
})
// The HTTP listeners' thread (src/http/thread.ts): its own bundle, loaded by path when an engine listens.
buildSync({
  ...common,
  entryPoints: [join(root, 'src', 'http', 'thread.ts')],
  format: 'esm',
  outdir: join(next, 'http'),
  external: ['better-sqlite3', 'fastify'],
  define: {},
  banner: {js: "import {createRequire as __ductileCreateRequire} from 'node:module'; const require = __ductileCreateRequire(import.meta.url);"},
})
// The Python spawn helper is not bundled: it is copied to the same path under the build.
mkdirSync(join(next, 'engine', 'helpers'), {recursive: true})
copyFileSync(join(root, 'src', 'engine', 'helpers', 'spawner.py'), join(next, 'engine', 'helpers', 'spawner.py'))
// The web Overwatch's stylesheet, script and icon: served from files, copied as they are.
mkdirSync(join(next, 'web', 'assets'), {recursive: true})
for (const f of readdirSync(join(root, 'src', 'web', 'assets'))) copyFileSync(join(root, 'src', 'web', 'assets', f), join(next, 'web', 'assets', f))
if (existsSync(dist)) renameSync(dist, old)
renameSync(next, dist)
rmSync(old, {recursive: true, force: true})
execFileSync(process.execPath, [join(root, 'scripts', 'manifest.js')], {cwd: root, stdio: 'inherit'})
