import {isPgUrl} from '../schema/pg-url.js'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {DuctileError} from '../errors.js'
import {isMap} from '../lib/json.js'
import {DAY, DEFAULT_ENGINE_LEASE_MS, defaultMaxWorkers, defaultPluginConfig} from './defaults.js'
import {parseIngress} from './ingress.js'
import {type LoadState, err, parseFile} from './read.js'
import {MIN_SECRET, isSecretKey, maskSecrets, redactDeep, secretValues} from './secrets.js'
import {CPU_AFFINITY_MODES, type Config, type ConfigIssue, type PluginConfig, SPAWN_HELPER_MODES, type ServiceConfig} from './types.js'
import {durationAt, intAt, oneOf, parseSchedules, positiveDurationAt} from './validate.js'

/**
 * config.yaml in the original's format: read the files (read.ts), check every value (validate.ts), collect
 * the secrets (secrets.ts). Every problem is collected with its file and key path; unknown keys are warnings.
 */

/** Load and validate a config file. Throws config_invalid listing every error; warnings are in `issues`. */
export function loadConfig(file: string, opts: {env?: NodeJS.ProcessEnv; throwOnError?: boolean} = {}): Config {
  const abs = resolve(file)
  if (!existsSync(abs)) {
    throw new DuctileError('config_missing', `config ${abs} does not exist`, {hint: 'pass --config with the path of config.yaml or its directory'})
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
    engine_lease_ms: durationAt(st, abs, 'service.engine_lease', s.engine_lease, DEFAULT_ENGINE_LEASE_MS),
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
  // Shorter, and a pause of the event loop (a long GC, a slow disk) would get a live engine declared dead.
  if (service.engine_lease_ms < 1000) err(st, abs, 'service.engine_lease', 'must be at least 1s')
  if (service.job_queue_retention_ms > 0 && service.job_queue_retention_ms < service.dedupe_ttl_ms) {
    err(st, abs, 'service.job_queue_retention', 'must be at least service.dedupe_ttl: dedupe reads terminal queue rows')
  }
  const stateRaw = (isMap(doc.state) ? doc.state.path : undefined) ?? (isMap(doc.database) ? doc.database.path : undefined)
  // state.url: a PostgreSQL database (postgres://user@host/db), shared by engines on many hosts.
  const stateUrl = (isMap(doc.state) ? doc.state.url : undefined) ?? (isMap(doc.database) ? doc.database.url : undefined)
  let statePath = typeof stateRaw === 'string' && stateRaw !== '' ? resolve(dir, stateRaw) : null
  if (stateUrl !== undefined) {
    if (typeof stateUrl !== 'string' || !isPgUrl(stateUrl)) err(st, abs, 'state.url', 'must be a PostgreSQL URL: postgres://USER@HOST[:PORT]/DATABASE')
    else if (statePath !== null) err(st, abs, 'state.url', 'give state.url or state.path, not both')
    else statePath = stateUrl.trim()
  }

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
    if (isMap(p.timeouts))
      for (const [cmd, v] of Object.entries(p.timeouts)) timeouts[cmd] = positiveDurationAt(st, file, `plugins.${name}.timeouts.${cmd}`, v, 60_000)
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

  const {api, webhooks} = parseIngress(st, abs, doc)

  const whole = {...doc, pipelines: st.pipelines.map((p) => p.raw)}
  const fromVars = new Set<string>()
  for (const text of st.texts) {
    for (const [, name = ''] of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) {
      const v = st.env[name]
      if (isSecretKey(name) && v !== undefined && v.length >= MIN_SECRET) fromVars.add(v)
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
    api,
    webhooks,
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
