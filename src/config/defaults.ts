import {cpus} from 'node:os'

import type {PluginConfig} from './types.js'

/** Defaults of the configuration, in one place: the loader, plugin discovery and doctor read them here. */

export const DAY = 86_400_000
/** What a plugin may run per command when the config does not say. */
export const DEFAULT_TIMEOUTS_MS: Record<string, number> = {poll: 60_000, handle: 120_000, health: 10_000, init: 30_000}

/** service.engine_lease: an engine whose heartbeat is older is dead (a shared database). */
export const DEFAULT_ENGINE_LEASE_MS = 30_000

/** Attempts per job and the backoff base of its retries. */
export const DEFAULT_RETRY = {max_attempts: 4, backoff_base_ms: 30_000} as const

/**
 * The settings of a plugin the config says nothing about: one place for the defaults that
 * the loader applies key by key, discovery gives unconfigured plugins, and doctor judges against.
 */
/** A plugin's circuit breaker when its config says nothing: open after 3 failures in a row, probe after 30 min. */
export const DEFAULT_CIRCUIT_BREAKER = {threshold: 3, reset_after_ms: 30 * 60_000}

export function defaultPluginConfig(name: string, file: string): PluginConfig {
  return {
    name,
    enabled: true,
    config: {},
    schedules: [],
    retry: {...DEFAULT_RETRY},
    timeouts_ms: {...DEFAULT_TIMEOUTS_MS},
    circuit_breaker: {...DEFAULT_CIRCUIT_BREAKER},
    max_outstanding_polls: 1,
    notify_on_complete: false,
    file,
  }
}

/** One CPU is left to the rest of the machine. */
export function defaultMaxWorkers(): number {
  return Math.max(1, cpus().length - 1)
}
