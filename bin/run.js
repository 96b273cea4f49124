#!/usr/bin/env node
// The CLI is one CommonJS bundle, dist/cli.cjs (scripts/build.js). Node 20 keeps no compiled code between runs,
// and parsing and compiling the bundle was about a third of a read command's time; so, as v8-compile-cache
// does, the bundle is compiled here with V8's code cache: the first run of a build saves the compiled code
// (with every function that run compiled) to the user's cache directory, later runs start from it. V8 refuses
// a cache made for other source or another V8 and the bundle is then compiled as usual. DUCTILE_COMPILE_CACHE=0
// turns it off; a cache directory that is not the user's own and private is not used.
import {closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeSync} from 'node:fs'
import Module, {createRequire} from 'node:module'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import vm from 'node:vm'

const require = createRequire(import.meta.url)
const bundle = fileURLToPath(new URL('../dist/cli.cjs', import.meta.url))
const KEEP_CACHES = 4

function cacheFile() {
  if (process.env.DUCTILE_COMPILE_CACHE === '0' || typeof process.getuid !== 'function') return null
  try {
    const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ductile')
    mkdirSync(dir, {recursive: true, mode: 0o700})
    const d = statSync(dir)
    if (d.uid !== process.getuid() || (d.mode & 0o077) !== 0) return null
    const b = statSync(bundle)
    const key = `${b.size}-${Math.round(b.mtimeMs)}-${b.ino}-${process.versions.v8}-${process.arch}`.replace(/[^\w.-]/g, '_')
    return join(dir, `cli-${key}.v8cache`)
  } catch {
    return null
  }
}

const compile = Module.prototype._compile
Module.prototype._compile = function (content, filename) {
  if (filename !== bundle) return compile.call(this, content, filename)
  Module.prototype._compile = compile
  const file = cacheFile()
  let cachedData
  try {
    if (file) cachedData = readFileSync(file)
  } catch {
    // none yet
  }
  // The bundle's import() calls come here (scripts/build.js routes them): a script compiled from the cache
  // cannot import() on Node 20.
  globalThis.__ductileImport = (specifier) => import(specifier)
  const script = new vm.Script(Module.wrap(content), {filename, cachedData})
  if (file && (!cachedData || script.cachedDataRejected)) {
    // At exit, so that the cache holds the functions this run compiled too. Beside it, then renamed over it.
    process.once('exit', () => {
      try {
        const tmp = `${file}.${process.pid}`
        const fd = openSync(tmp, 'w', 0o600)
        writeSync(fd, script.createCachedData())
        closeSync(fd)
        renameSync(tmp, file)
        // One file per build: keep the newest few (another install may use the directory too).
        const dir = dirname(file)
        const old = readdirSync(dir)
          .filter((n) => n.startsWith('cli-') && n.endsWith('.v8cache'))
          .map((n) => ({n, t: statSync(join(dir, n)).mtimeMs}))
          .sort((a, b) => b.t - a.t)
          .slice(KEEP_CACHES)
        for (const {n} of old) unlinkSync(join(dir, n))
      } catch {
        // a full disk or a read-only home: the next run compiles again
      }
    })
  }
  const fn = script.runInThisContext({displayErrors: true})
  return fn.call(this.exports, this.exports, createRequire(filename), this, filename, dirname(filename))
}

// oclif checks package.json's engines with semver when it loads (5 ms per start): the same check, without it
// (the variable is set only while the bundle loads, so no process we start inherits it).
const quietOclif = !process.env.OCLIF_DISABLE_ENGINE_WARNING
if (quietOclif) {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  if (!((major === 20 && minor >= 19) || major >= 22))
    process.emitWarning(`Node version must be >=20.19 <21 || >=22 to use this CLI. Current node version: ${process.versions.node}`)
  process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
}
const {run} = require(bundle)
if (quietOclif) delete process.env.OCLIF_DISABLE_ENGINE_WARNING
await run(import.meta.url)
