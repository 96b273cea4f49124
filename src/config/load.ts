import {createHash} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import {cpus} from 'node:os'
import {basename, dirname, join, relative, resolve} from 'node:path'
import YAML from 'yaml'

import {DuctileError, errorMessage} from '../errors.js'
import {parseDuration} from '../schema/time.js'
import {interpolateEnv} from './interpolate.js'
import {normalizeSchedule} from './schedule.js'
import {isMap} from '../lib/json.js'

/**
 * config.yaml in the original's format (original §5): service, state, plugin_roots, plugins, pipelines,
 * include (files and directories), `${VAR}` interpolation, environment_vars.include. Every problem is
 * collected with its file and key path; unknown keys are warnings.
 */

export interface ConfigIssue {
  severity: 'error' | 'warning'
  file: string
  path: string
  message: string
  /**
   * A problem confined to one schedule: `config check` fails on it, but the engine still starts and keeps
   * that schedule paused_invalid (one bad schedule does not stop the others).
   */
  scope?: 'schedule'
}

export interface ScheduleConfig {
  id: string
  every?: string
  cron?: string
  at?: string
  after?: string
  jitter_ms: number
  catch_up: 'skip' | 'run_once' | 'run_all'
  if_running: 'skip' | 'queue' | 'cancel'
  only_between?: string
  not_on?: (string | number)[]
  timezone?: string
  command: string
  payload: Record<string, unknown>
}

export interface PluginConfig {
  name: string
  enabled: boolean
  uses?: string
  config: Record<string, unknown>
  schedules: ScheduleConfig[]
  retry: {max_attempts: number; backoff_base_ms: number}
  timeouts_ms: Record<string, number>
  circuit_breaker: {threshold: number; reset_after_ms: number}
  /** Explicit per-plugin parallelism; undefined when not configured. */
  parallelism?: number
  max_outstanding_polls: number
  notify_on_complete: boolean
  file: string
}

/** service.spawn_helper: who starts plugin processes (see spawnPath in src/engine/spawner.ts). */
export const SPAWN_HELPER_MODES = ['auto', 'python', 'node', 'off'] as const
export type SpawnHelperMode = (typeof SPAWN_HELPER_MODES)[number]

/** service.cpu_affinity: keep the engine on max_workers CPUs when there are more (see src/engine/affinity.ts). */
export const CPU_AFFINITY_MODES = ['auto', 'off'] as const
export type CpuAffinityMode = (typeof CPU_AFFINITY_MODES)[number]

export interface ServiceConfig {
  name: string
  tick_interval_ms: number
  log_level: 'debug' | 'info' | 'warn' | 'error'
  log_format: 'json' | 'text'
  dedupe_ttl_ms: number
  job_log_retention_ms: number
  job_queue_retention_ms: number
  job_transitions_retention_ms: number
  job_attempts_retention_ms: number
  breaker_transitions_retention_ms: number
  max_workers: number
  plugin_env_passthrough: string[]
  allow_symlinks: boolean
  hook_max_depth: number
  spawn_helper: SpawnHelperMode
  cpu_affinity: CpuAffinityMode
}

export interface PipelineConfigRaw {
  raw: Record<string, unknown>
  file: string
}

export interface Config {
  file: string
  dir: string
  files: string[]
  service: ServiceConfig
  statePath: string | null
  pluginRoots: string[]
  plugins: Record<string, PluginConfig>
  pipelines: PipelineConfigRaw[]
  /** The environment after environment_vars.include files (the process environment wins). */
  env: Record<string, string>
  issues: ConfigIssue[]
  /** Hash of every loaded file's text, in load order. */
  sourceHash: string
  /** The merged document with secrets masked (for snapshots and `config check --json`). */
  sanitized: unknown
  /**
   * Every secret value of the config, longest first: values under secret-looking keys (at any depth), URL
   * passwords, and the values of `${VAR}`s with secret-looking names. Redacted from logs and stored output.
   */
  secrets: string[]
}

const DAY = 86_400_000
export const DEFAULT_TIMEOUTS_MS: Record<string, number> = {poll: 60_000, handle: 120_000, health: 10_000, init: 30_000}

/**
 * The settings of a plugin the config says nothing about (original §3, §7): one place for the defaults that
 * the loader applies key by key, discovery gives unconfigured plugins, and doctor judges against.
 */
export function defaultPluginConfig(name: string, file: string): PluginConfig {
  return {
    name,
    enabled: true,
    config: {},
    schedules: [],
    retry: {max_attempts: 4, backoff_base_ms: 30_000},
    timeouts_ms: {...DEFAULT_TIMEOUTS_MS},
    circuit_breaker: {threshold: 3, reset_after_ms: 30 * 60_000},
    max_outstanding_polls: 1,
    notify_on_complete: false,
    file,
  }
}

const TOP_KEYS = new Set([
  'service', 'state', 'database', 'plugin_roots', 'plugins', 'pipelines', 'include', 'environment_vars',
  'routes', 'webhooks', 'api', 'instances', 'remote_ingress', 'accounts', 'secrets', 'tcc_paths',
])
const SERVICE_KEYS = new Set([
  'name', 'tick_interval', 'log_level', 'log_format', 'dedupe_ttl', 'job_log_retention', 'job_queue_retention',
  'job_transitions_retention', 'job_attempts_retention', 'breaker_transitions_retention', 'max_workers',
  'plugin_env_passthrough', 'spawn_helper', 'cpu_affinity', 'allow_symlinks', 'hook_max_depth', 'strict_mode', 'admission', 'unconfined',
])
const PLUGIN_KEYS = new Set([
  'enabled', 'uses', 'run_as', 'requires_vault', 'schedules', 'config', 'retry', 'timeouts', 'circuit_breaker',
  'max_outstanding_polls', 'parallelism', 'notify_on_complete',
])
const RETRY_KEYS = new Set(['max_attempts', 'backoff_base'])
const BREAKER_KEYS = new Set(['threshold', 'reset_after'])
const PATH_KEYS = new Set(['path'])
const ENV_VARS_KEYS = new Set(['include'])
const SCHEDULE_KEYS = new Set([
  'id', 'every', 'cron', 'at', 'after', 'jitter', 'catch_up', 'if_running', 'only_between', 'timezone', 'not_on',
  'command', 'payload', 'preferred_window',
])

/** Key names whose values are secrets: passwords, tokens, `*_key` names (aws_access_key_id, signing_key), auth. */
const SECRET_KEY = /(^|[_-])pass($|[_-])|passw(or)?d|passphrase|secret|token|credential|auth|bearer|signing|private|(^|[_-])(api)?key($|[_-])|apikey|(^|[_-])dsn$/i
/** The password of a URL or DSN: `scheme://user:PASSWORD@host`. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)([^\s@/]+)@/gi
/** Secrets shorter than this are not searched for in text (they would mask ordinary words). */
const MIN_SECRET = 4

export const isSecretKey = (key: string) => SECRET_KEY.test(key)

/**
 * Mask secrets at any depth: every value under a secret-looking key (strings in its lists and maps too),
 * and the password of every URL or DSN.
 */
export function maskSecrets(value: unknown, underSecret = false): unknown {
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, underSecret))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, maskSecrets(v, underSecret || isSecretKey(k))]))
  }
  if (underSecret && value != null) return '***'
  if (typeof value === 'string') return value.replace(URL_PASSWORD, '$1***@')
  return value
}

/** The secret values at any depth (what `redact` removes from logs and stored output). */
export function secretValues(value: unknown, out: string[] = [], underSecret = false): string[] {
  if (Array.isArray(value)) for (const v of value) secretValues(v, out, underSecret)
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) secretValues(v, out, underSecret || isSecretKey(k))
  } else if (typeof value === 'string' || typeof value === 'number') {
    const text = String(value)
    if (underSecret && text.length >= MIN_SECRET) out.push(text)
    for (const m of text.matchAll(URL_PASSWORD)) if (m[2].length >= MIN_SECRET) out.push(m[2], safeDecode(m[2]))
  }
  return [...new Set(out)]
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Replace every occurrence of a secret with *** (JSON-escaped forms too); longest first. */
export function redact(text: string | null, secrets: string[]): string | null {
  if (text === null || secrets.length === 0) return text
  let out = text
  for (const s of secrets) {
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) if (form && out.includes(form)) out = out.split(form).join('***')
  }
  return out
}

/** `redact` over every string of a value. */
export function redactDeep(value: unknown, secrets: string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets))
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactDeep(v, secrets)]))
  return typeof value === 'string' ? redact(value, secrets) : value
}


/** Later files override maps and scalars; lists are appended (original §5.1). */
function merge(base: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {...base}
  for (const [k, v] of Object.entries(next)) {
    const b = out[k]
    if (isMap(b) && isMap(v)) out[k] = merge(b, v)
    else if (Array.isArray(b) && Array.isArray(v)) out[k] = [...b, ...v]
    else out[k] = v
  }
  return out
}

/** KEY=VALUE lines; `export`, quotes and comments allowed. */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line)
    if (!m) continue
    let v = m[2]
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1)
    else v = v.replace(/\s+#.*$/, '')
    out[m[1]] = v
  }
  return out
}

interface LoadState {
  issues: ConfigIssue[]
  files: string[]
  texts: string[]
  env: Record<string, string>
  pluginFile: Map<string, string>
  pipelines: PipelineConfigRaw[]
  /** Files whose YAML did not parse: their keys are unknown, so no "missing key" errors follow. */
  unparsed: Set<string>
}

function err(st: LoadState, file: string, path: string, message: string) {
  st.issues.push({severity: 'error', file, path, message})
}
function warn(st: LoadState, file: string, path: string, message: string) {
  st.issues.push({severity: 'warning', file, path, message})
}

function warnUnknown(st: LoadState, file: string, path: string, obj: unknown, known: Set<string>) {
  if (!isMap(obj)) return
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) warn(st, file, path ? `${path}.${k}` : k, `unknown key "${k}" (ignored)`)
  }
}

function parseFile(st: LoadState, file: string, stack: string[]): Record<string, unknown> {
  if (stack.includes(file)) {
    err(st, stack[stack.length - 1], 'include', `include loop: ${[...stack, file].map((f) => basename(f)).join(' → ')}`)
    return {}
  }
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    err(st, stack[stack.length - 1] ?? file, 'include', `cannot read ${file}: ${errorMessage(e)}`)
    return {}
  }
  st.files.push(file)
  st.texts.push(text)
  const dir = dirname(file)
  // environment_vars.include is read before interpolation so its files can supply the variables.
  try {
    const pre = YAML.parse(text) as {environment_vars?: {include?: unknown}} | null
    const envFiles = pre?.environment_vars?.include
    if (Array.isArray(envFiles)) {
      for (const f of envFiles) {
        const p = resolve(dir, String(f))
        if (!existsSync(p)) {
          warn(st, file, 'environment_vars.include', `env file ${p} does not exist`)
          continue
        }
        for (const [k, v] of Object.entries(parseEnvFile(readFileSync(p, 'utf8')))) if (!(k in st.env)) st.env[k] = v
      }
    }
  } catch {
    // Reported below, with line and column, by the real parse.
  }
  // Comment lines are not interpolated: a commented-out ${VAR} is no error.
  const lines = text.split('\n')
  const interpolatedLines: string[] = []
  for (const [i, line] of lines.entries()) {
    if (/^\s*#/.test(line)) {
      interpolatedLines.push(line)
      continue
    }
    const r = interpolateEnv(line, st.env)
    for (const u of r.unresolved) err(st, file, `line ${i + 1}`, `\${${u.name}} is not set (set it in the environment or an environment_vars.include file, or give a default: \${${u.name}:-value})`)
    interpolatedLines.push(r.text)
  }
  const doc = YAML.parseDocument(interpolatedLines.join('\n'), {prettyErrors: true, uniqueKeys: true})
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0]
      err(st, file, pos ? `line ${pos.line}, column ${pos.col}` : '(yaml)', `invalid YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`)
    }
    st.unparsed.add(file)
    return {}
  }
  let value: unknown
  try {
    // maxAliasCount bounds what aliases may expand to (a "billion laughs" file).
    value = doc.toJS({maxAliasCount: 100}) as unknown
  } catch (e) {
    err(st, file, '(yaml)', `cannot be loaded: ${errorMessage(e)}`)
    st.unparsed.add(file)
    return {}
  }
  if (value == null) return {}
  if (!isMap(value)) {
    err(st, file, '(top)', 'the file must be a YAML mapping (key: value), not a list or a scalar')
    return {}
  }
  warnUnknown(st, file, '', value, TOP_KEYS)
  if (isMap(value.plugins)) {
    for (const [name, p] of Object.entries(value.plugins)) {
      if (!st.pluginFile.has(name)) st.pluginFile.set(name, file)
      warnUnknown(st, file, `plugins.${name}`, p, PLUGIN_KEYS)
      if (isMap(p)) {
        warnUnknown(st, file, `plugins.${name}.retry`, p.retry, RETRY_KEYS)
        warnUnknown(st, file, `plugins.${name}.circuit_breaker`, p.circuit_breaker, BREAKER_KEYS)
      }
      if (isMap(p) && Array.isArray(p.schedules)) {
        p.schedules.forEach((s, i) => warnUnknown(st, file, `plugins.${name}.schedules[${i}]`, s, SCHEDULE_KEYS))
      }
      if (isMap(p) && 'schedule' in p) err(st, file, `plugins.${name}.schedule`, 'the singular "schedule:" is not supported: use a "schedules:" list')
    }
  }
  if (isMap(value.service)) warnUnknown(st, file, 'service', value.service, SERVICE_KEYS)
  warnUnknown(st, file, 'state', value.state, PATH_KEYS)
  warnUnknown(st, file, 'database', value.database, PATH_KEYS)
  warnUnknown(st, file, 'environment_vars', value.environment_vars, ENV_VARS_KEYS)
  if (Array.isArray(value.pipelines)) for (const p of value.pipelines) st.pipelines.push({raw: isMap(p) ? p : {value: p}, file})
  else if (value.pipelines !== undefined) err(st, file, 'pipelines', 'pipelines must be a list')

  let merged: Record<string, unknown> = {}
  const includes = value.include
  const {include: _i, pipelines: _p, ...own} = value
  merged = merge(merged, own)
  if (includes !== undefined) {
    if (!Array.isArray(includes)) err(st, file, 'include', 'include must be a list of files or directories')
    else {
      for (const inc of includes) {
        const p = resolve(dir, String(inc))
        if (!existsSync(p)) {
          err(st, file, 'include', `included ${relative(dir, p) || p} does not exist`)
          continue
        }
        const targets = statSync(p).isDirectory()
          ? readdirSync(p).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort().map((f) => join(p, f))
          : [p]
        for (const t of targets) merged = merge(merged, parseFile(st, t, [...stack, file]))
      }
    }
  }
  return merged
}

function durationAt(st: LoadState, file: string, path: string, v: unknown, def: number): number {
  if (v === undefined || v === null || v === '') return def
  try {
    return parseDuration(v as string | number)
  } catch (e) {
    err(st, file, path, errorMessage(e))
    return def
  }
}

/** A duration that must be more than zero (a timeout, a backoff): 0s would fire at once or retry in a loop. */
function positiveDurationAt(st: LoadState, file: string, path: string, v: unknown, def: number): number {
  const ms = durationAt(st, file, path, v, def)
  if (ms <= 0) {
    err(st, file, path, `must be more than 0 (got ${JSON.stringify(v)})`)
    return def
  }
  return ms
}

function intAt(st: LoadState, file: string, path: string, v: unknown, def: number, min: number): number {
  if (v === undefined || v === null) return def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    err(st, file, path, `must be a whole number ≥ ${min} (got ${JSON.stringify(v)})`)
    return def
  }
  return v
}

function oneOf<T extends string>(st: LoadState, file: string, path: string, v: unknown, allowed: readonly T[], def: T): T {
  if (v === undefined || v === null) return def
  if (!allowed.includes(v as T)) {
    err(st, file, path, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`)
    return def
  }
  return v as T
}

function parseSchedules(st: LoadState, file: string, plugin: string, raw: unknown): ScheduleConfig[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) {
    err(st, file, `plugins.${plugin}.schedules`, 'schedules must be a list')
    return []
  }
  const seen = new Set<string>()
  const out: ScheduleConfig[] = []
  raw.forEach((s, i) => {
    const path = `plugins.${plugin}.schedules[${i}]`
    if (!isMap(s)) {
      err(st, file, path, 'a schedule must be a mapping')
      return
    }
    const id = s.id === undefined ? 'default' : String(s.id)
    if (seen.has(id)) err(st, file, `${path}.id`, `duplicate schedule id "${id}" for plugin ${plugin} (ids must be unique per plugin)`)
    seen.add(id)
    const command = s.command === undefined ? 'poll' : String(s.command)
    const payload = s.payload === undefined ? {} : s.payload
    if (!isMap(payload)) err(st, file, `${path}.payload`, 'payload must be a mapping')
    const catchUp = oneOf(st, file, `${path}.catch_up`, s.catch_up, ['skip', 'run_once', 'run_all'] as const, 'skip')
    const scheduleProblem = (key: string, message: string) => st.issues.push({severity: 'error', file, path: `${path}${key}`, message, scope: 'schedule'})
    const kinds = (['every', 'cron', 'at', 'after'] as const).filter((k) => s[k] !== undefined)
    if (kinds.length !== 1) scheduleProblem('', `exactly one of every, cron, at, after is required (got ${kinds.length ? kinds.join(', ') : 'none'})`)
    if (command === 'handle') scheduleProblem('.command', 'handle cannot be scheduled: it needs an event')
    if (catchUp !== 'skip' && s.every === undefined) scheduleProblem('.catch_up', 'catch_up other than skip needs an every schedule')
    const sc: ScheduleConfig = {
      id,
      every: s.every === undefined ? undefined : String(s.every),
      cron: s.cron === undefined ? undefined : String(s.cron),
      at: s.at === undefined ? undefined : String(s.at),
      after: s.after === undefined ? undefined : String(s.after),
      jitter_ms: durationAt(st, file, `${path}.jitter`, s.jitter, 0),
      catch_up: catchUp,
      if_running: oneOf(st, file, `${path}.if_running`, s.if_running, ['skip', 'queue', 'cancel'] as const, 'skip'),
      only_between: s.only_between === undefined ? undefined : String(s.only_between),
      not_on: s.not_on === undefined ? undefined : Array.isArray(s.not_on) ? (s.not_on as (string | number)[]) : [s.not_on as string],
      timezone: s.timezone === undefined ? undefined : String(s.timezone),
      command,
      payload: isMap(payload) ? payload : {},
    }
    if (kinds.length === 1) {
      try {
        normalizeSchedule(sc)
      } catch (e) {
        scheduleProblem(`.${kinds[0]}`, errorMessage(e))
      }
    }
    out.push(sc)
  })
  return out
}

export function defaultMaxWorkers(): number {
  return Math.max(1, cpus().length - 1)
}

/** Load and validate a config file. Throws config_invalid listing every error; warnings are in `issues`. */
export function loadConfig(file: string, opts: {env?: NodeJS.ProcessEnv; throwOnError?: boolean} = {}): Config {
  const abs = resolve(file)
  if (!existsSync(abs)) {
    throw new DuctileError('config_missing', `config ${abs} does not exist`, {hint: 'pass --config with the path of config.yaml or its directory', exitCode: 2})
  }
  const st: LoadState = {issues: [], files: [], texts: [], env: {}, pluginFile: new Map(), pipelines: [], unparsed: new Set()}
  for (const [k, v] of Object.entries(opts.env ?? process.env)) if (v !== undefined) st.env[k] = v
  const doc = parseFile(st, abs, [])
  const dir = dirname(abs)
  const s = isMap(doc.service) ? doc.service : {}
  if (doc.service !== undefined && !isMap(doc.service)) err(st, abs, 'service', 'service must be a mapping')
  const maxWorkers = intAt(st, abs, 'service.max_workers', s.max_workers, defaultMaxWorkers(), 1)
  const service: ServiceConfig = {
    name: s.name === undefined ? 'ductile' : String(s.name),
    tick_interval_ms: durationAt(st, abs, 'service.tick_interval', s.tick_interval, 60_000),
    log_level: oneOf(st, abs, 'service.log_level', s.log_level, ['debug', 'info', 'warn', 'error'] as const, 'info'),
    log_format: oneOf(st, abs, 'service.log_format', s.log_format, ['json', 'text'] as const, 'text'),
    dedupe_ttl_ms: durationAt(st, abs, 'service.dedupe_ttl', s.dedupe_ttl, DAY),
    job_log_retention_ms: durationAt(st, abs, 'service.job_log_retention', s.job_log_retention, 30 * DAY),
    job_queue_retention_ms: durationAt(st, abs, 'service.job_queue_retention', s.job_queue_retention, DAY),
    job_transitions_retention_ms: durationAt(st, abs, 'service.job_transitions_retention', s.job_transitions_retention, 30 * DAY),
    job_attempts_retention_ms: durationAt(st, abs, 'service.job_attempts_retention', s.job_attempts_retention, 30 * DAY),
    breaker_transitions_retention_ms: durationAt(st, abs, 'service.breaker_transitions_retention', s.breaker_transitions_retention, 90 * DAY),
    max_workers: maxWorkers,
    plugin_env_passthrough: Array.isArray(s.plugin_env_passthrough) ? s.plugin_env_passthrough.map(String) : [],
    allow_symlinks: s.allow_symlinks === true,
    hook_max_depth: intAt(st, abs, 'service.hook_max_depth', s.hook_max_depth, 4, 0),
    spawn_helper: oneOf(st, abs, 'service.spawn_helper', s.spawn_helper, SPAWN_HELPER_MODES, 'auto'),
    cpu_affinity: oneOf(st, abs, 'service.cpu_affinity', s.cpu_affinity, CPU_AFFINITY_MODES, 'auto'),
  }
  if (service.tick_interval_ms < 100) err(st, abs, 'service.tick_interval', 'must be at least 100ms')
  if (service.job_queue_retention_ms > 0 && service.job_queue_retention_ms < service.dedupe_ttl_ms) {
    err(st, abs, 'service.job_queue_retention', 'must be at least service.dedupe_ttl: dedupe reads terminal queue rows')
  }
  const stateRaw = (isMap(doc.state) ? doc.state.path : undefined) ?? (isMap(doc.database) ? doc.database.path : undefined)
  const statePath = typeof stateRaw === 'string' && stateRaw !== '' ? resolve(dir, stateRaw) : null

  let pluginRoots: string[] = []
  if (doc.plugin_roots === undefined && !st.unparsed.has(abs)) err(st, abs, 'plugin_roots', 'plugin_roots is required: a list of directories holding plugins')
  else if (!Array.isArray(doc.plugin_roots)) err(st, abs, 'plugin_roots', 'plugin_roots must be a list')
  else pluginRoots = doc.plugin_roots.map((r) => resolve(dir, String(r)))

  const plugins: Record<string, PluginConfig> = {}
  if (doc.plugins !== undefined && !isMap(doc.plugins)) err(st, abs, 'plugins', 'plugins must be a mapping of plugin names')
  for (const [name, raw] of Object.entries(isMap(doc.plugins) ? doc.plugins : {})) {
    const file = st.pluginFile.get(name) ?? abs
    const p = isMap(raw) ? raw : {}
    if (raw !== null && raw !== undefined && !isMap(raw)) err(st, file, `plugins.${name}`, 'must be a mapping')
    const retry = isMap(p.retry) ? p.retry : {}
    const cb = isMap(p.circuit_breaker) ? p.circuit_breaker : {}
    const d = defaultPluginConfig(name, file)
    const timeouts: Record<string, number> = d.timeouts_ms
    if (isMap(p.timeouts)) for (const [cmd, v] of Object.entries(p.timeouts)) timeouts[cmd] = positiveDurationAt(st, file, `plugins.${name}.timeouts.${cmd}`, v, 60_000)
    const config = p.config === undefined || p.config === null ? {} : p.config
    if (!isMap(config)) err(st, file, `plugins.${name}.config`, 'config must be a mapping')
    let parallelism: number | undefined
    if (p.parallelism !== undefined) {
      parallelism = intAt(st, file, `plugins.${name}.parallelism`, p.parallelism, 1, 1)
      if (parallelism > maxWorkers) err(st, file, `plugins.${name}.parallelism`, `must be at most service.max_workers (${maxWorkers})`)
    }
    plugins[name] = {
      name,
      enabled: p.enabled !== false,
      uses: p.uses === undefined ? undefined : String(p.uses),
      config: isMap(config) ? config : {},
      schedules: parseSchedules(st, file, name, p.schedules),
      retry: {
        max_attempts: intAt(st, file, `plugins.${name}.retry.max_attempts`, retry.max_attempts, d.retry.max_attempts, 1),
        backoff_base_ms: positiveDurationAt(st, file, `plugins.${name}.retry.backoff_base`, retry.backoff_base, d.retry.backoff_base_ms),
      },
      timeouts_ms: timeouts,
      circuit_breaker: {
        threshold: intAt(st, file, `plugins.${name}.circuit_breaker.threshold`, cb.threshold, d.circuit_breaker.threshold, 1),
        reset_after_ms: durationAt(st, file, `plugins.${name}.circuit_breaker.reset_after`, cb.reset_after, d.circuit_breaker.reset_after_ms),
      },
      parallelism,
      max_outstanding_polls: intAt(st, file, `plugins.${name}.max_outstanding_polls`, p.max_outstanding_polls, d.max_outstanding_polls, 1),
      notify_on_complete: p.notify_on_complete === true,
      file,
    }
  }

  const whole = {...doc, pipelines: st.pipelines.map((p) => p.raw)}
  const fromVars = new Set<string>()
  for (const text of st.texts) {
    for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) {
      const v = st.env[m[1]]
      if (isSecretKey(m[1]) && v !== undefined && v.length >= MIN_SECRET) fromVars.add(v)
    }
  }
  const secrets = [...new Set([...secretValues(whole), ...fromVars])].sort((a, b) => b.length - a.length)
  const sanitized = redactDeep(maskSecrets(whole), secrets)
  const cfg: Config = {
    file: abs,
    dir,
    files: st.files,
    service,
    statePath,
    pluginRoots,
    plugins,
    pipelines: st.pipelines,
    env: st.env,
    issues: st.issues,
    sourceHash: createHash('sha256').update(st.texts.join('\0')).digest('hex'),
    sanitized,
    secrets,
  }
  if (opts.throwOnError !== false) assertNoConfigErrors(cfg.issues)
  return cfg
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}: ${i.path}: ${i.message}`
}

/** Throws on errors; schedule-scoped ones only with `strict` (the engine keeps such schedules paused_invalid). */
export function assertNoConfigErrors(issues: ConfigIssue[], opts: {strict?: boolean} = {}): void {
  const errors = issues.filter((i) => i.severity === 'error' && (opts.strict || i.scope !== 'schedule'))
  if (errors.length === 0) return
  throw new DuctileError('config_invalid', `invalid configuration:\n  ${errors.map(formatIssue).join('\n  ')}`, {
    hint: 'fix the named keys; `ductile config check` lists every problem without starting anything',
  })
}
