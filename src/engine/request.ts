import type {ServiceConfig} from '../config/types.js'
import {type PluginInstance, type PluginRegistry, commandTimeoutMs, entrypointProblem, hasCommand} from '../plugins/discover.js'
import type {Job} from '../schema/types.js'
import {errorMessage} from '../errors.js'
import {isMap, payloadDepthProblem} from '../lib/json.js'
import type {PipelineDispatch} from './dispatch.js'
import type {PluginRequest} from './runner.js'
import type {EngineStore} from './store.js'

/**
 * The protocol v2 request of one attempt, built from the job row, the plugin's config and state, and the
 * pipeline context. A job that cannot make a request (a payload that is not JSON, too deep, a handle job
 * without an event envelope) fails directly, without retry: running it again cannot fix the row.
 */

export type RequestOrFailure = {request: PluginRequest} | {failure: string}

/** What an attempt does once claimed: run its plugin with this request, end skipped, or fail without retry. */
export type Prepared =
  | {kind: 'run'; plugin: PluginInstance; request: PluginRequest; timeoutMs: number}
  | {kind: 'skip'; reason: string}
  | {kind: 'fail'; error: string}

export interface PrepareDeps {
  registry: PluginRegistry
  store: EngineStore
  dispatch: PipelineDispatch
  service: ServiceConfig
}

/**
 * Everything checked before a plugin starts: it is installed and has the command, the row makes a request,
 * its state reads, its step's `if:` holds, and its entrypoint is still safe to run (checked at every spawn:
 * the file may have been swapped since discovery).
 */
export function prepareAttempt(job: Job, d: PrepareDeps): Prepared {
  const fail = (error: string): Prepared => ({kind: 'fail', error})
  const plugin = d.registry.plugins.get(job.plugin)
  if (!plugin) return fail(`plugin ${job.plugin} is not installed: no manifest under plugin_roots names it`)
  if (!hasCommand(plugin, job.command)) {
    return fail(`plugin ${job.plugin} has no command ${job.command} (manifest commands: ${plugin.manifest.commands.map((c) => c.name).join(', ')})`)
  }
  const timeoutMs = commandTimeoutMs(plugin, job.command)
  const parsed = parsePayload(job)
  if ('failure' in parsed) return fail(parsed.failure)
  let state: Record<string, unknown>
  try {
    state = d.store.readState(plugin.name)
  } catch (e) {
    return fail(errorMessage(e))
  }
  const context = d.dispatch.contextOf(job)
  const prepareEvent = (event: Record<string, unknown>, ctx: Record<string, unknown>) => d.dispatch.prepareEvent(job, event, ctx)
  const built = buildRequest({job, plugin, timeoutMs, state, context, prepareEvent}, parsed.payload)
  if ('failure' in built) return fail(built.failure)
  const skip = d.dispatch.skipReason(job, parsed.payload, built.request.context)
  if (skip) return {kind: 'skip', reason: skip}
  const unsafe = entrypointProblem(plugin.manifest.entrypoint, plugin.manifest.realDir, d.service.allow_symlinks)
  if (unsafe) return fail(`refused to run plugin ${job.plugin}: ${unsafe}; fix the plugin directory (\`ductile plugins list\` checks it)`)
  return {kind: 'run', plugin, request: built.request, timeoutMs}
}

export interface RequestParts {
  job: Job
  plugin: PluginInstance
  timeoutMs: number
  state: Record<string, unknown>
  /** The pipeline context of the job (empty outside pipelines). */
  context: Record<string, unknown>
  /** The event a handle job's plugin receives, from its envelope (a pipeline step's `with:` remaps it). */
  prepareEvent: (event: Record<string, unknown>, context: Record<string, unknown>) => Record<string, unknown>
}

/** The job's payload, parsed and checked. */
export function parsePayload(job: Job): {payload: unknown} | {failure: string} {
  let payload: unknown
  if (job.payload != null && job.payload !== '') {
    try {
      payload = JSON.parse(job.payload)
    } catch {
      return {failure: 'job payload is not valid JSON'}
    }
  }
  const deep = payloadDepthProblem(payload)
  if (deep) return {failure: `${deep}; such a job is refused at enqueue, this one was written by another process`}
  return {payload}
}

export function buildRequest(p: RequestParts, payload: unknown): RequestOrFailure {
  const {job, plugin} = p
  const context: Record<string, unknown> = {ductile_plugin: plugin.name, ...p.context}
  const request: PluginRequest = {
    protocol: 2,
    job_id: job.id,
    command: job.command,
    config: plugin.config.config,
    state: p.state,
    context,
    deadline_at: new Date(Date.now() + p.timeoutMs).toISOString(),
    instance: plugin.name,
  }
  if (isMap(payload) && Object.keys(payload).length > 0) request.payload = payload
  if (job.command === 'handle' && isMap(payload)) {
    if (typeof payload.type !== 'string') return {failure: 'handle job payload is not an event envelope (it needs a "type")'}
    request.event = p.prepareEvent({...payload, payload: mergeContext(payload.payload, context)}, context)
  }
  return {request}
}

/** Context keys are merged into event.payload without overwriting the event's own keys. */
function mergeContext(payload: unknown, context: Record<string, unknown>): unknown {
  if (!isMap(payload)) return payload
  const out = {...payload}
  for (const [k, v] of Object.entries(context)) if (!(k in out)) out[k] = v
  return out
}
