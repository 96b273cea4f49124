import type {ScheduleConfig} from './schedule.js'

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
