import type {ScheduleConfig} from './schedule.js'
import type {ApiToken, RateLimit} from '../lib/auth.js'

/**
 * The validated configuration: what `loadConfig` returns and every other part reads. The file format is the
 * original's config.yaml (service, state, plugin_roots, plugins, pipelines, include, `${VAR}`s).
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
  /** How long an engine's heartbeat may be silent before live engines recover its jobs (shared databases). */
  engine_lease_ms: number
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
  /** api: the HTTP API (off unless enabled). */
  api: ApiConfig
  /** webhooks: signed webhook endpoints (nothing listens unless listen is set). */
  webhooks: WebhooksConfig
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

/** The HTTP API and webhooks (config/ingress.ts reads them). */
// Tokens, scopes and rate limits are defined beside what checks them (lib/auth.ts).
export {SCOPES, type ApiToken, type RateLimit, type Scope} from '../lib/auth.js'

export interface Listen {
  host: string
  port: number
  /** As written (for messages): `127.0.0.1:8080`. */
  text: string
}

export interface ApiConfig {
  enabled: boolean
  listen: Listen
  tokens: ApiToken[]
  /** Synchronous pipeline requests waiting at once; more get 429. */
  max_concurrent_sync: number
  max_sync_timeout_ms: number
  /** Request bodies larger than this get 413 before they are read whole. */
  max_body_bytes: number
  /** A request must arrive whole within this. */
  request_timeout_ms: number
  /** Per token; null when off. */
  rate_limit: RateLimit | null
  /** How often an idle /events stream gets a comment line. */
  heartbeat_ms: number
  /** The web Overwatch under /ui/ on this listener. */
  ui: boolean
}

export interface WebhookEndpoint {
  name: string
  path: string
  plugin: string
  command: string
  secret: string
  signature_header: string
  max_body_bytes: number
  file: string
}

export interface WebhooksConfig {
  listen: Listen | null
  endpoints: WebhookEndpoint[]
}
