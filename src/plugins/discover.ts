import {createHash} from 'node:crypto'
import {existsSync, lstatSync, readFileSync, readdirSync, realpathSync, statSync} from 'node:fs'
import {dirname, isAbsolute, join, relative, resolve, sep} from 'node:path'
import YAML from 'yaml'

import {defaultPluginConfig} from '../config/defaults.js'
import type {Config, ConfigIssue, PluginConfig} from '../config/types.js'
import {errorMessage} from '../errors.js'

/**
 * Plugin discovery: every manifest.yaml under plugin_roots. An invalid
 * plugin is refused with its file, the field and the reason; the others still load.
 */

export interface ManifestCommand {
  name: string
  type: 'read' | 'write'
  description?: string
}

export interface FactOutput {
  command: string
  from: 'state_updates'
  fact_type: string
  compatibility_view: 'mirror_object'
}

export interface Manifest {
  name: string
  version: string
  description?: string
  protocol: 2
  dir: string
  /** The directory's real path at discovery: the entrypoint must stay inside it. */
  realDir: string
  file: string
  entrypoint: string
  concurrency_safe: boolean
  commands: ManifestCommand[]
  fact_outputs: FactOutput[]
  config_keys: {required: string[]; optional: string[]}
  fingerprint: string
}

/** A runnable plugin instance: a manifest plus the config entry that names it (an alias with `uses:`). */
export interface PluginInstance {
  /** The configured name (the alias when `uses:` is set): job_queue.plugin, `instance` in the request. */
  name: string
  manifest: Manifest
  config: PluginConfig
}

export interface PluginRegistry {
  plugins: Map<string, PluginInstance>
  manifests: Map<string, Manifest>
  issues: ConfigIssue[]
}

const COMMAND_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/
const HINT_FILES = ['run.py', 'run.sh', 'main.go', 'main.py', 'index.js', 'index.ts', 'run.js', 'run.ts']

/** Directories holding a manifest.yaml, below root. Symlinked directories are followed only when allowed, else listed in `skipped`. */
function findManifests(root: string, out: string[], links: {allow: boolean; skipped: string[]}, depth = 0): void {
  if (depth > 8) return
  let entries: string[]
  try {
    entries = readdirSync(root)
  } catch {
    return
  }
  if (entries.includes('manifest.yaml')) {
    out.push(join(root, 'manifest.yaml'))
    return
  }
  for (const e of entries.sort()) {
    if (e.startsWith('.') || e === 'node_modules') continue
    const p = join(root, e)
    try {
      const l = lstatSync(p)
      if (l.isDirectory()) findManifests(p, out, links, depth + 1)
      else if (l.isSymbolicLink() && statSync(p).isDirectory()) {
        if (links.allow) findManifests(p, out, links, depth + 1)
        else links.skipped.push(p)
      }
    } catch {
      // unreadable entry: skip
    }
  }
}

/** Validate one manifest. Returns the manifest or the problems, each naming the field. */
export function readManifest(file: string, root: string, opts: {allowSymlinks?: boolean} = {}): {manifest?: Manifest; issues: ConfigIssue[]} {
  const issues: ConfigIssue[] = []
  const bad = (path: string, message: string) => issues.push({severity: 'error', file, path, message})
  let doc: unknown
  try {
    const parsed = YAML.parseDocument(readFileSync(file, 'utf8'), {prettyErrors: true})
    if (parsed.errors.length) {
      const e = parsed.errors[0]
      const pos = e?.linePos?.[0]
      bad(pos ? `line ${pos.line}, column ${pos.col}` : '(yaml)', `invalid YAML: ${e?.message.split('\n')[0]}`)
      return {issues}
    }
    doc = parsed.toJS()
  } catch (e) {
    bad('(file)', `cannot read: ${errorMessage(e)}`)
    return {issues}
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    bad('(top)', 'a manifest must be a YAML mapping')
    return {issues}
  }
  const m = doc as Record<string, unknown>
  const dir = dirname(file)
  if (m.manifest_spec !== 'ductile.plugin') bad('manifest_spec', `must be "ductile.plugin" (got ${JSON.stringify(m.manifest_spec)})`)
  if (m.manifest_version !== 1 && m.manifest_version !== '1') bad('manifest_version', `must be 1 (got ${JSON.stringify(m.manifest_version)})`)
  if (typeof m.name !== 'string' || m.name.trim() === '') bad('name', 'is required')
  if (m.protocol !== 2 && m.protocol !== '2') bad('protocol', `must be 2 (got ${JSON.stringify(m.protocol)}): this engine speaks protocol v2 only`)

  let entrypoint = ''
  let realDir = ''
  if (typeof m.entrypoint !== 'string' || m.entrypoint === '') bad('entrypoint', 'is required: the executable, relative to the plugin directory')
  else if (isAbsolute(m.entrypoint) || m.entrypoint.split(/[\\/]/).includes('..'))
    bad('entrypoint', `must be a path inside the plugin directory without "..": ${m.entrypoint}`)
  else {
    entrypoint = resolve(dir, m.entrypoint)
    if (!existsSync(entrypoint)) bad('entrypoint', `${entrypoint} does not exist`)
    else {
      try {
        realDir = realpathSync(dir)
        // A plugin directory reached through a symlink may live elsewhere only when symlinks are allowed.
        if (!opts.allowSymlinks && !realDir.startsWith(realpathSync(root) + sep))
          bad('entrypoint', `${dir} resolves outside the plugin root ${root} (${realDir})`)
      } catch (e) {
        bad('entrypoint', `cannot resolve ${dir}: ${errorMessage(e)}`)
      }
      const problem = realDir ? entrypointProblem(entrypoint, realDir, opts.allowSymlinks === true) : null
      if (problem) bad('entrypoint', problem)
    }
  }
  try {
    if ((statSync(dir).mode & 0o002) !== 0) bad('(directory)', `plugin directory ${dir} is world-writable: anyone could replace the plugin (chmod o-w it)`)
  } catch {
    // reported as a missing entrypoint
  }

  const commands: ManifestCommand[] = []
  if (!Array.isArray(m.commands)) bad('commands', 'is required: a list of {name, type} (the map form is not supported)')
  else if (m.commands.length === 0) bad('commands', 'must list at least one command')
  else {
    const seen = new Set<string>()
    m.commands.forEach((c, i) => {
      const cmd = (c ?? {}) as Record<string, unknown>
      if (typeof cmd.name !== 'string' || !COMMAND_NAME.test(cmd.name))
        bad(`commands[${i}].name`, `is required: a letter then letters, digits, _ or - (got ${JSON.stringify(cmd.name)})`)
      else if (seen.has(cmd.name)) bad(`commands[${i}].name`, `duplicate command ${cmd.name}`)
      if (cmd.type !== 'read' && cmd.type !== 'write') bad(`commands[${i}].type`, `is required: read or write (got ${JSON.stringify(cmd.type)})`)
      if (typeof cmd.name === 'string') {
        seen.add(cmd.name)
        commands.push({name: cmd.name, type: cmd.type as 'read' | 'write', description: typeof cmd.description === 'string' ? cmd.description : undefined})
      }
    })
  }

  const factOutputs: FactOutput[] = []
  if (m.fact_outputs !== undefined) {
    if (!Array.isArray(m.fact_outputs)) bad('fact_outputs', 'must be a list')
    else
      m.fact_outputs.forEach((f, i) => {
        const r = (f ?? {}) as Record<string, unknown>
        const when = (r.when ?? {}) as Record<string, unknown>
        const path = `fact_outputs[${i}]`
        if (typeof when.command !== 'string' || !commands.some((c) => c.name === when.command))
          bad(`${path}.when.command`, `must name a declared command (got ${JSON.stringify(when.command)})`)
        if (r.from !== 'state_updates') bad(`${path}.from`, `must be state_updates (got ${JSON.stringify(r.from)})`)
        if (typeof r.fact_type !== 'string' || r.fact_type === '') bad(`${path}.fact_type`, 'is required')
        if (r.compatibility_view !== undefined && r.compatibility_view !== '' && r.compatibility_view !== 'mirror_object')
          bad(`${path}.compatibility_view`, `must be mirror_object or empty (got ${JSON.stringify(r.compatibility_view)})`)
        factOutputs.push({command: String(when.command), from: 'state_updates', fact_type: String(r.fact_type), compatibility_view: 'mirror_object'})
      })
  }
  const ck = (m.config_keys ?? {}) as Record<string, unknown>
  const config_keys = {
    required: Array.isArray(ck.required) ? ck.required.map(String) : [],
    optional: Array.isArray(ck.optional) ? ck.optional.map(String) : [],
  }
  if (m.concurrency_safe !== undefined && typeof m.concurrency_safe !== 'boolean') bad('concurrency_safe', 'must be true or false')
  if (issues.length) return {issues}
  const fingerprint = createHash('sha256').update(readFileSync(file)).update(readFileSync(entrypoint)).digest('hex')
  return {
    issues,
    manifest: {
      name: String(m.name),
      version: m.version === undefined ? '' : String(m.version),
      description: typeof m.description === 'string' ? m.description : undefined,
      protocol: 2,
      dir,
      realDir,
      file,
      entrypoint,
      concurrency_safe: m.concurrency_safe !== false,
      commands,
      fact_outputs: factOutputs,
      config_keys,
      fingerprint,
    },
  }
}

/**
 * What is wrong with an entrypoint, or null: it must be an executable regular file whose real path lies in
 * the plugin's (real) directory, and not a symlink unless allowed. Checked at discovery and again before
 * every spawn, so an entrypoint swapped for a link to a script elsewhere while the engine runs never runs.
 */
export function entrypointProblem(entrypoint: string, realDir: string, allowSymlinks: boolean): string | null {
  let l: ReturnType<typeof lstatSync>
  let real: string
  try {
    l = lstatSync(entrypoint)
    real = realpathSync(entrypoint)
  } catch (e) {
    return `${entrypoint} cannot be read: ${errorMessage(e)}`
  }
  if (l.isSymbolicLink() && !allowSymlinks) return `${entrypoint} is a symlink (set service.allow_symlinks to allow it)`
  if (!real.startsWith(realDir + sep)) return `${entrypoint} resolves outside the plugin directory (${real})`
  const st = l.isSymbolicLink() ? statSync(real) : l
  if (!st.isFile()) return `${entrypoint} is not a file`
  if ((st.mode & 0o111) === 0) return `${entrypoint} is not executable (chmod +x it)`
  return null
}

/** Discover manifests and bind them to the config's plugin entries (aliases with `uses:`). */
export function discoverPlugins(config: Config): PluginRegistry {
  const issues: ConfigIssue[] = []
  const manifests = new Map<string, Manifest>()
  for (const root of config.pluginRoots) {
    if (!existsSync(root)) {
      issues.push({severity: 'error', file: config.file, path: 'plugin_roots', message: `plugin root ${root} does not exist`})
      continue
    }
    const files: string[] = []
    const links = {allow: config.service.allow_symlinks, skipped: [] as string[]}
    findManifests(root, files, links)
    for (const p of links.skipped) {
      issues.push({
        severity: 'warning',
        file: config.file,
        path: 'plugin_roots',
        message: `${p} is a symlink to a directory: skipped (set service.allow_symlinks: true to load plugins through links)`,
      })
    }
    for (const file of files) {
      const r = readManifest(file, root, {allowSymlinks: config.service.allow_symlinks})
      issues.push(...r.issues)
      if (!r.manifest) continue
      const prev = manifests.get(r.manifest.name)
      if (prev) {
        issues.push({severity: 'warning', file, path: 'name', message: `duplicate plugin name ${r.manifest.name}: keeping ${relative(root, prev.file)}`})
        continue
      }
      manifests.set(r.manifest.name, r.manifest)
    }
    warnMissingManifests(root, issues)
  }

  const plugins = new Map<string, PluginInstance>()
  // Every discovered plugin runs under its own name with default settings unless configured.
  for (const [name, manifest] of manifests) plugins.set(name, {name, manifest, config: defaultPluginConfig(name, config.file)})
  for (const [name, pc] of Object.entries(config.plugins)) {
    const base = pc.uses ?? name
    const manifest = manifests.get(base)
    if (!manifest) {
      issues.push({
        severity: 'error',
        file: pc.file,
        path: pc.uses ? `plugins.${name}.uses` : `plugins.${name}`,
        message: `no plugin named ${base} under plugin_roots (${config.pluginRoots.join(', ') || 'none'})`,
      })
      plugins.delete(name)
      continue
    }
    const missing = manifest.config_keys.required.filter((k) => pc.config[k] === undefined || pc.config[k] === null || pc.config[k] === '')
    if (missing.length) {
      issues.push({
        severity: 'error',
        file: pc.file,
        path: `plugins.${name}.config`,
        message: `plugin ${base} requires config key(s) ${missing.join(', ')} (manifest config_keys.required)`,
      })
      plugins.delete(name)
      continue
    }
    for (const s of pc.schedules) {
      if (s.command !== 'handle' && !manifest.commands.some((c) => c.name === s.command)) {
        issues.push({
          severity: 'warning',
          file: pc.file,
          path: `plugins.${name}.schedules.${s.id}.command`,
          message: `plugin ${base} has no command ${s.command}: the schedule will stay paused_invalid`,
        })
      }
    }
    if (!pc.enabled) {
      plugins.delete(name)
      continue
    }
    plugins.set(name, {name, manifest, config: pc})
  }
  return {plugins, manifests, issues}
}

function warnMissingManifests(root: string, issues: ConfigIssue[]): void {
  let entries: string[] = []
  try {
    entries = readdirSync(root)
  } catch {
    return
  }
  for (const e of entries) {
    const d = join(root, e)
    try {
      if (!statSync(d).isDirectory() || existsSync(join(d, 'manifest.yaml'))) continue
      const files = readdirSync(d)
      if (files.some((f) => HINT_FILES.includes(f)) && !files.some((f) => statSync(join(d, f)).isDirectory())) {
        issues.push({
          severity: 'warning',
          file: d,
          path: '(directory)',
          message: `looks like a plugin (${files.filter((f) => HINT_FILES.includes(f)).join(', ')}) but has no manifest.yaml`,
        })
      }
    } catch {
      // unreadable: skip
    }
  }
}

/** Is this command declared by the plugin's manifest? */
export function hasCommand(p: PluginInstance, command: string): boolean {
  return p.manifest.commands.some((c) => c.name === command)
}

/** The timeout of a command: configured, else the protocol default, else 60 s. */
export function commandTimeoutMs(p: PluginInstance, command: string): number {
  return p.config.timeouts_ms[command] ?? 60_000
}

/** Per-plugin cap: explicit parallelism wins; concurrency_safe: false forces 1; else max_workers. */
export function pluginParallelism(p: PluginInstance, maxWorkers: number): number {
  if (p.config.parallelism !== undefined) return Math.min(p.config.parallelism, maxWorkers)
  return p.manifest.concurrency_safe ? maxWorkers : 1
}
