import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import {basename, dirname, join, relative, resolve} from 'node:path'
import {parseEnv} from 'node:util'
import YAML from 'yaml'

import {errorMessage} from '../errors.js'
import {isMap} from '../lib/json.js'
import {interpolateEnv} from './interpolate.js'
import type {ConfigIssue, PipelineConfigRaw} from './types.js'

/**
 * Reading config files: YAML with `${VAR}` interpolation (comment lines excepted), environment_vars.include
 * files (dotenv syntax, read by Node's own parser), include of files and directories (later files override
 * maps and scalars, lists are appended), and warnings for unknown keys. Every problem is collected with its
 * file and key path; nothing here throws.
 */

const TOP_KEYS = new Set([
  'service',
  'state',
  'database',
  'plugin_roots',
  'plugins',
  'pipelines',
  'include',
  'environment_vars',
  'routes',
  'webhooks',
  'api',
  'instances',
  'remote_ingress',
  'accounts',
  'secrets',
  'tcc_paths',
  'tokens',
])
const API_KEYS = new Set([
  'enabled',
  'listen',
  'auth',
  'max_concurrent_sync',
  'max_sync_timeout',
  'max_body_size',
  'request_timeout',
  'rate_limit',
  'heartbeat',
  'allowed_origins',
  'ui',
])
const WEBHOOKS_KEYS = new Set(['listen', 'endpoints'])
const ENDPOINT_KEYS = new Set(['name', 'path', 'plugin', 'command', 'secret_ref', 'secret', 'signature_header', 'max_body_size'])
const SERVICE_KEYS = new Set([
  'name',
  'engine_lease',
  'tick_interval',
  'log_level',
  'log_format',
  'dedupe_ttl',
  'job_log_retention',
  'job_queue_retention',
  'job_transitions_retention',
  'job_attempts_retention',
  'breaker_transitions_retention',
  'max_workers',
  'plugin_env_passthrough',
  'spawn_helper',
  'cpu_affinity',
  'allow_symlinks',
  'hook_max_depth',
  'strict_mode',
  'admission',
  'unconfined',
])
const PLUGIN_KEYS = new Set([
  'enabled',
  'uses',
  'run_as',
  'requires_vault',
  'schedules',
  'config',
  'retry',
  'timeouts',
  'circuit_breaker',
  'max_outstanding_polls',
  'parallelism',
  'notify_on_complete',
])
const RETRY_KEYS = new Set(['max_attempts', 'backoff_base'])
const BREAKER_KEYS = new Set(['threshold', 'reset_after'])
const PATH_KEYS = new Set(['path', 'url'])
const ENV_VARS_KEYS = new Set(['include'])
const SCHEDULE_KEYS = new Set([
  'id',
  'every',
  'cron',
  'at',
  'after',
  'jitter',
  'catch_up',
  'if_running',
  'only_between',
  'timezone',
  'not_on',
  'command',
  'payload',
  'preferred_window',
])

/** Later files override maps and scalars; lists are appended. */
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

export interface LoadState {
  issues: ConfigIssue[]
  files: string[]
  texts: string[]
  env: Record<string, string>
  pluginFile: Map<string, string>
  pipelines: PipelineConfigRaw[]
  /** Files whose YAML did not parse: their keys are unknown, so no "missing key" errors follow. */
  unparsed: Set<string>
}

export function err(st: LoadState, file: string, path: string, message: string) {
  st.issues.push({severity: 'error', file, path, message})
}
export function warn(st: LoadState, file: string, path: string, message: string) {
  st.issues.push({severity: 'warning', file, path, message})
}

function warnUnknown(st: LoadState, file: string, path: string, obj: unknown, known: Set<string>) {
  if (!isMap(obj)) return
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) warn(st, file, path ? `${path}.${k}` : k, `unknown key "${k}" (ignored)`)
  }
}

export function parseFile(st: LoadState, file: string, stack: string[]): Record<string, unknown> {
  if (stack.includes(file)) {
    err(st, stack.at(-1) ?? file, 'include', `include loop: ${[...stack, file].map((f) => basename(f)).join(' → ')}`)
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
    checkSecretSources(st, file, pre)
    const envFiles = pre?.environment_vars?.include
    if (Array.isArray(envFiles)) {
      for (const f of envFiles) {
        const p = resolve(dir, String(f))
        if (!existsSync(p)) {
          warn(st, file, 'environment_vars.include', `env file ${p} does not exist`)
          continue
        }
        for (const [k, v] of Object.entries(parseEnv(readFileSync(p, 'utf8')))) if (v !== undefined && !(k in st.env)) st.env[k] = v
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
    for (const u of r.unresolved)
      err(
        st,
        file,
        `line ${i + 1}`,
        `\${${u.name}} is not set (set it in the environment or an environment_vars.include file, or give a default: \${${u.name}:-value})`,
      )
    interpolatedLines.push(r.text)
  }
  const doc = YAML.parseDocument(interpolatedLines.join('\n'), {prettyErrors: true, uniqueKeys: true})
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0]
      err(
        st,
        file,
        pos ? `line ${pos.line}, column ${pos.col}` : '(yaml)',
        `invalid YAML: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
      )
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
  // The original's webhooks.yaml may be a bare list of endpoints.
  if (Array.isArray(value) && /^webhooks\.ya?ml$/.test(basename(file))) value = {webhooks: {endpoints: value}}
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
        for (const [i, s] of p.schedules.entries()) warnUnknown(st, file, `plugins.${name}.schedules[${i}]`, s, SCHEDULE_KEYS)
      }
      if (isMap(p) && 'schedule' in p) err(st, file, `plugins.${name}.schedule`, 'the singular "schedule:" is not supported: use a "schedules:" list')
    }
  }
  if (isMap(value.service)) warnUnknown(st, file, 'service', value.service, SERVICE_KEYS)
  warnUnknown(st, file, 'api', value.api, API_KEYS)
  warnUnknown(st, file, 'webhooks', value.webhooks, WEBHOOKS_KEYS)
  if (isMap(value.webhooks) && Array.isArray(value.webhooks.endpoints))
    for (const [i, e] of value.webhooks.endpoints.entries()) warnUnknown(st, file, `webhooks.endpoints[${i}]`, e, ENDPOINT_KEYS)
  if (value.tokens !== undefined) checkTokensFile(st, file, statSync(file).mode)
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
          ? readdirSync(p)
              .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
              .sort()
              .map((f) => join(p, f))
          : [p]
        for (const t of targets) merged = merge(merged, parseFile(st, t, [...stack, file]))
      }
    }
  }
  return merged
}

const VAR_ONLY = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/

/**
 * Raw values that must come from `${VAR}`: api.auth.tokens[].token and webhooks.endpoints[].secret. Called on
 * each file's text before interpolation; a literal is an error naming the key.
 */
export function checkSecretSources(st: LoadState, file: string, pre: unknown): void {
  const literal = (path: string, v: unknown, hint: string) => {
    if (v !== undefined && v !== null && !(typeof v === 'string' && VAR_ONLY.test(v.trim())))
      err(st, file, path, `a literal secret in a config file is refused: write it as \${VAR} and set VAR in the environment (${hint})`)
  }
  const bySecretRef = 'or name a tokens.yaml entry with secret_ref'
  if (Array.isArray(pre)) for (const [i, e] of pre.entries()) if (isMap(e)) literal(`[${i}].secret`, e.secret, bySecretRef)
  if (!isMap(pre)) return
  const tokens = isMap(pre.api) && isMap(pre.api.auth) ? pre.api.auth.tokens : undefined
  if (Array.isArray(tokens))
    for (const [i, t] of tokens.entries())
      if (isMap(t)) literal(`api.auth.tokens[${i}].token`, t.token, `token: \${DUCTILE_API_TOKEN}, or secret_ref: a tokens.yaml name`)
  const endpoints = isMap(pre.webhooks) ? pre.webhooks.endpoints : undefined
  if (Array.isArray(endpoints)) for (const [i, e] of endpoints.entries()) if (isMap(e)) literal(`webhooks.endpoints[${i}].secret`, e.secret, bySecretRef)
}

/** tokens.yaml holds keys in the clear: it must be readable by its owner only. */
export function checkTokensFile(st: LoadState, file: string, mode: number): void {
  if ((mode & 0o077) !== 0) warn(st, file, 'tokens', `this file holds keys and is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 ${file}`)
}
