import type {PluginRegistry} from './discover.js'
import {type Expr, parseExpr} from '../config/expr.js'
import type {Config, ConfigIssue} from '../config/types.js'
import {errorMessage} from '../errors.js'
import {parseDuration} from '../schema/time.js'
import {isMap} from '../lib/json.js'

/**
 * Pipelines: `on` an event type (or `on-hook` a lifecycle signal), optional `from_plugin` and
 * `if`, and steps run in order, each with `uses` (a plugin or alias), `command` (default handle), `if`,
 * `baggage` claims and `with` remaps. Validated at load, each problem with its file and pipeline.
 */

export interface BaggageClaim {
  /** Dotted destination in the accumulated baggage. */
  path: string
  /** payload.x or context.x */
  from: string
  /** Copy an object's keys under this namespace instead of the value at `path`. */
  namespace?: string
}

export interface PipelineStep {
  id: string
  uses: string
  command: string
  if?: Expr
  baggage: BaggageClaim[]
  with: Record<string, unknown>
}

export interface Pipeline {
  name: string
  on?: string
  onHook?: string
  fromPlugin?: string
  if?: Expr
  steps: PipelineStep[]
  /** route_max_depth: how many hops an instance (and what it triggers) may take; 0 = unlimited. */
  maxDepth: number
  /** How POST /pipeline/{name} answers: at once (asynchronous) or when the run ends (synchronous). */
  executionMode: 'asynchronous' | 'synchronous'
  /** How long a synchronous call waits (null: api.max_sync_timeout). */
  timeoutMs: number | null
  file: string
}

export const DEFAULT_MAX_DEPTH = 16
const HOOK_SIGNALS = ['job.completed', 'job.failed', 'job.timed_out']

export function compilePipelines(config: Config, registry: PluginRegistry): {pipelines: Pipeline[]; issues: ConfigIssue[]} {
  const issues: ConfigIssue[] = []
  const pipelines: Pipeline[] = []
  const names = new Set<string>()
  config.pipelines.forEach(({raw, file}, idx) => {
    const name = typeof raw.name === 'string' && raw.name ? raw.name : `#${idx + 1}`
    const bad = (path: string, message: string) => issues.push({severity: 'error', file, path: `pipelines[${name}]${path}`, message})
    if (typeof raw.name !== 'string' || !raw.name) bad('.name', 'is required')
    else if (names.has(raw.name)) bad('.name', `duplicate pipeline name ${raw.name}`)
    names.add(name)
    const on = raw.on === undefined ? undefined : String(raw.on)
    const onHook = raw['on-hook'] === undefined ? undefined : String(raw['on-hook'])
    if ((on === undefined) === (onHook === undefined)) bad('', 'exactly one of on (an event type) or on-hook (a lifecycle signal) is required')
    if (onHook !== undefined && !HOOK_SIGNALS.includes(onHook)) bad('.on-hook', `must be one of ${HOOK_SIGNALS.join(', ')} (got ${onHook})`)
    const expr = (path: string, v: unknown): Expr | undefined => {
      if (v === undefined) return undefined
      try {
        return parseExpr(String(v))
      } catch (e) {
        bad(path, `bad expression ${JSON.stringify(v)}: ${errorMessage(e)}`)
        return undefined
      }
    }
    const fromPlugin = raw.from_plugin === undefined ? undefined : String(raw.from_plugin)
    if (fromPlugin && !registry.plugins.has(fromPlugin)) bad('.from_plugin', `unknown plugin ${fromPlugin}`)
    const maxDepth = raw.max_depth === undefined ? DEFAULT_MAX_DEPTH : Number(raw.max_depth)
    if (!Number.isInteger(maxDepth) || maxDepth < 0) bad('.max_depth', 'must be a whole number ≥ 0 (0 = unlimited)')
    const executionMode = raw.execution_mode === undefined ? 'asynchronous' : String(raw.execution_mode)
    if (executionMode !== 'asynchronous' && executionMode !== 'synchronous')
      bad('.execution_mode', `must be asynchronous or synchronous (got ${executionMode})`)
    let timeoutMs: number | null = null
    if (raw.timeout !== undefined) {
      try {
        timeoutMs = parseDuration(raw.timeout as string | number)
        if (timeoutMs <= 0) bad('.timeout', 'must be more than 0')
      } catch (e) {
        bad('.timeout', errorMessage(e))
      }
    }
    const steps: PipelineStep[] = []
    if (!Array.isArray(raw.steps) || raw.steps.length === 0) bad('.steps', 'is required: a list of steps')
    else {
      const ids = new Set<string>()
      raw.steps.forEach((s, i) => {
        const st = isMap(s) ? s : {}
        const id = typeof st.id === 'string' && st.id ? st.id : `#${i + 1}`
        const p = `.steps[${id}]`
        if (typeof st.id !== 'string' || !st.id) bad(`.steps[${i}].id`, 'is required')
        else if (ids.has(st.id)) bad(`${p}.id`, `duplicate step id ${st.id}`)
        ids.add(id)
        const uses = typeof st.uses === 'string' ? st.uses : ''
        const command = st.command === undefined ? 'handle' : String(st.command)
        const plugin = registry.plugins.get(uses)
        if (!uses) bad(`${p}.uses`, 'is required: a plugin or alias')
        else if (!plugin) bad(`${p}.uses`, `unknown plugin ${uses}`)
        else if (!plugin.manifest.commands.some((c) => c.name === command)) bad(`${p}.command`, `plugin ${uses} has no command ${command}`)
        const baggage: BaggageClaim[] = []
        if (st.baggage !== undefined) {
          if (!isMap(st.baggage)) bad(`${p}.baggage`, 'must be a mapping of destination: source')
          else
            for (const [dest, src] of Object.entries(st.baggage)) {
              const from = isMap(src) ? src.from : src
              const namespace = isMap(src) ? src.namespace : undefined
              if (typeof from !== 'string' || !/^(payload|context)(\.[^.]+)+$/.test(from))
                bad(`${p}.baggage.${dest}`, `source must be payload.<path> or context.<path> (got ${JSON.stringify(from)})`)
              else baggage.push({path: dest, from, namespace: namespace === undefined ? undefined : String(namespace)})
            }
        }
        if (st.with !== undefined && !isMap(st.with)) bad(`${p}.with`, 'must be a mapping')
        steps.push({id, uses, command, if: expr(`${p}.if`, st.if), baggage, with: isMap(st.with) ? st.with : {}})
      })
    }
    pipelines.push({
      name,
      on,
      onHook,
      fromPlugin,
      if: expr('.if', raw.if),
      steps,
      maxDepth: Number.isInteger(maxDepth) && maxDepth >= 0 ? maxDepth : DEFAULT_MAX_DEPTH,
      executionMode: executionMode === 'synchronous' ? 'synchronous' : 'asynchronous',
      timeoutMs,
      file,
    })
  })
  return {pipelines, issues}
}
