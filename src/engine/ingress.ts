import type {ServiceConfig} from '../config/types.js'
import {type PluginInstance, type PluginRegistry, hasCommand} from '../plugins/discover.js'
import type {Pipeline} from '../plugins/pipelines.js'
import {type EnqueueResult, enqueueJob} from '../queries/queue.js'
import type {Db} from '../schema/db.js'
import {uuidv7} from '../schema/ids.js'
import {formatTs} from '../schema/time.js'
import {DuctileError} from '../errors.js'
import {type Origin, type RouteResult, Router, normalizeEvent} from './router.js'

export type {Origin}

/**
 * Work that enters from outside the engine: an operator's `jobs enqueue` and `events emit`, the HTTP API and
 * signed webhooks all enqueue through here, so a job looks the same whoever asked for it. A handle command
 * gets its payload in an event envelope `{type: "<origin>.trigger", payload, source, event_id, timestamp}`.
 * Runs inside the caller's transaction when it has one; the caller wakes the engine after the commit.
 */

export interface CommandRequest {
  plugin: string
  command: string
  payload: Record<string, unknown>
  origin: Origin
  /** submitted_by (default: the origin). */
  submittedBy?: string
  /** Default: the plugin's retry.max_attempts. */
  maxAttempts?: number
  dedupeKey?: string
  /** Also deduplicate against a queued or running job with the key (webhook redeliveries). */
  dedupeOutstanding?: boolean
  /** More fields of a handle command's envelope (a webhook's delivery headers). */
  envelope?: Record<string, unknown>
}

export interface IngressContext {
  db: Db
  registry: PluginRegistry
  service: ServiceConfig
  /** The engine's config snapshot; null outside an engine. */
  snapshotId: string | null
  now: Date
}

/** The plugin and command a request names; an `unknown_plugin` error (listing what exists) otherwise. */
export function targetOf(registry: PluginRegistry, plugin: string, command: string): PluginInstance {
  const p = registry.plugins.get(plugin)
  if (!p)
    throw new DuctileError('unknown_plugin', `unknown plugin ${plugin}`, {
      hint: `known plugins: ${[...registry.plugins.keys()].sort().join(', ') || 'none'} (see \`ductile plugins list\`)`,
    })
  if (!hasCommand(p, command))
    throw new DuctileError('unknown_plugin', `plugin ${plugin} has no command ${command}`, {
      hint: `its commands: ${p.manifest.commands.map((c) => c.name).join(', ')}`,
    })
  return p
}

/** Enqueue one plugin command. */
export function enqueueCommand(c: IngressContext, r: CommandRequest): EnqueueResult {
  const p = targetOf(c.registry, r.plugin, r.command)
  const now = formatTs(c.now)
  const payload =
    r.command === 'handle' ? {type: `${r.origin}.trigger`, payload: r.payload, source: r.origin, event_id: uuidv7(), timestamp: now, ...r.envelope} : r.payload
  return enqueueJob(c.db, {
    plugin: r.plugin,
    command: r.command,
    payload,
    submittedBy: r.submittedBy ?? r.origin,
    maxAttempts: r.maxAttempts ?? p.config.retry.max_attempts,
    dedupeKey: r.dedupeKey,
    dedupeTtlMs: c.service.dedupe_ttl_ms,
    dedupeOutstanding: r.dedupeOutstanding,
    configSnapshotId: c.snapshotId,
    now,
  })
}

export interface EventRequest {
  type: string
  payload: Record<string, unknown>
  origin: Origin
  dedupeKey?: string
  /** Start only these pipelines, whatever their `on` (a pipeline called by name). */
  pipelines?: Pipeline[]
}

/** Route an event to the pipelines it starts (or to the named ones): one new instance each. */
export function emitEvent(c: IngressContext & {pipelines: Pipeline[]; secrets?: string[]}, e: EventRequest): RouteResult & {eventId: string} {
  const router = new Router({
    db: c.db,
    pipelines: c.pipelines,
    registry: c.registry,
    service: c.service,
    now: () => c.now,
    snapshotId: c.snapshotId,
    secrets: c.secrets,
  })
  const ev = normalizeEvent({type: e.type, payload: e.payload, dedupe_key: e.dedupeKey, source: e.origin}, e.origin, c.now)
  const r = router.route(ev, {job: null, plugin: e.origin, submittedBy: e.origin, roots: e.pipelines, explicit: e.pipelines !== undefined})
  return {...r, eventId: ev.event_id}
}
