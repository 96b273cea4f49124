import {type ChildProcess, fork, spawn} from 'node:child_process'

import type {SpawnHelperMode} from '../config/types.js'
import {DuctileError, errorMessage} from '../errors.js'
import {ownFile} from '../assets.js'
import {findOnPath} from '../lib/which.js'
import type {HelperMessage, HelperRequest} from './helpers/protocol.js'

/**
 * The engine side of the spawn helpers: plugin processes are started by a small long-lived child process
 * instead of the engine itself. fork() copies the caller's page tables, so a spawn costs the engine (tens to
 * hundreds of MB) 1.5–2 ms of its main thread. Two helpers speak the same messages over Node's IPC channel:
 * helpers/spawner.py (python3: vfork from a small process, ~0.2 ms a spawn) and helpers/spawner-node.js
 * (Node: ~0.6 ms, no other runtime needed). The engine keeps timeouts and kills: it signals the plugin's
 * group by PID.
 */

export type HelperKind = 'python' | 'node'

export interface SpawnPlan {
  /** The helper, or null: the engine spawns plugins itself. */
  kind: HelperKind | null
  python?: string
}

/**
 * auto (the default): the Python helper wherever python3 is on PATH, at any max_workers (it takes the spawn
 * off the engine for less than the spawn costs the engine); without python3, the Node helper from 2 workers
 * up, and the engine itself with 1 worker, where the Node helper's two extra IPC hops per job cost more than
 * the spawn they move (317-327 jobs/s spawning itself against 300-314/s, trivial plugin, 2 cores).
 */
export function spawnPath(mode: SpawnHelperMode, maxWorkers: number, path = process.env.PATH): SpawnPlan {
  if (mode === 'off') return {kind: null}
  if (mode === 'node') return {kind: 'node'}
  const python = findOnPath('python3', path)
  if (python) return {kind: 'python', python}
  if (mode === 'python') {
    throw new DuctileError('config_invalid', 'service.spawn_helper is python, but python3 is not on the PATH', {
      hint: 'install python3 (3.5 or later), or set service.spawn_helper to auto or node',
    })
  }
  return {kind: maxWorkers > 1 ? 'node' : null}
}

export type SpawnRequest = Omit<HelperRequest, 'id'>

export type SpawnOutcome =
  | {kind: 'exit'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; overflow: boolean; stderrTruncated: boolean}
  | {kind: 'error'; message: string}

interface Pending {
  request: HelperRequest
  onSpawn: (pid: number) => void
  resolve: (o: SpawnOutcome) => void
}

const text = (b64: string) => Buffer.from(b64, 'base64').toString('utf8')

export class Spawner {
  private child: ChildProcess | null = null
  private ready = false
  private readonly pending = new Map<number, Pending>()
  private next = 0

  /**
   * `python` names the interpreter for the Python helper. If that helper cannot start (it exits before it
   * says it is ready), the Node helper takes over for good and `onFallback` says why.
   */
  constructor(
    private kindNow: HelperKind,
    private readonly opts: {python?: string; env?: Record<string, string>; onFallback?: (why: string) => void} = {},
  ) {}

  /** Which helper starts the plugins (python until a failed start made it node). */
  get kind(): HelperKind {
    return this.kindNow
  }

  /**
   * The helper leads its own session (detached): Ctrl-C or a SIGTERM to the engine's process group does not
   * reach it, so in-flight runs drain with the engine; it exits when the engine closes the channel. Its
   * environment is `opts.env` (by default the engine's), never anything else of the engine's.
   */
  private start(): ChildProcess {
    const stdio: ['ignore', 'ignore', 'inherit', 'ipc'] = ['ignore', 'ignore', 'inherit', 'ipc']
    const env = this.opts.env
    if (this.kindNow === 'python') {
      return spawn(this.opts.python ?? 'python3', ['-I', ownFile('engine/helpers/spawner.py')], {stdio, serialization: 'json', detached: true, env})
    }
    // Plain JavaScript from src/ or dist/ alike, with no flags of this process (a loader would slow its start).
    return fork(ownFile('engine/helpers/spawner-node.js'), [], {stdio, execArgv: [], detached: true, env})
  }

  private ensure(): ChildProcess {
    if (this.child?.connected) return this.child
    const child = this.start()
    this.ready = false
    child.on('message', (m: HelperMessage) => {
      if (m.type === 'ready') {
        this.ready = true
        return
      }
      const p = this.pending.get(m.id)
      if (!p) return
      if (m.type === 'spawned') p.onSpawn(m.pid)
      else if (m.type === 'error') {
        this.pending.delete(m.id)
        p.resolve({kind: 'error', message: m.message || 'spawn failed'})
      } else {
        this.pending.delete(m.id)
        p.resolve({
          kind: 'exit',
          code: m.code,
          signal: m.signal,
          stdout: text(m.stdout64),
          stderr: text(m.stderr64),
          overflow: m.overflow,
          stderrTruncated: m.stderrTruncated,
        })
      }
    })
    let gone = false
    const onGone = (why: string) => {
      if (gone) return
      gone = true
      if (this.child === child) this.child = null
      if (!this.ready && this.kindNow === 'python') {
        // It never started, so it started no plugin: the Node helper takes over and gets the same requests.
        this.kindNow = 'node'
        this.opts.onFallback?.(`the Python spawn helper did not start (${why}); plugins are started by the Node helper`)
        const requests = [...this.pending.values()]
        if (requests.length) {
          const next = this.ensure()
          for (const p of requests) next.send(p.request)
        }
        return
      }
      // Runs in flight lose their reporter: they fail (retryably) and crash recovery handles their processes.
      for (const [id, p] of this.pending) {
        this.pending.delete(id)
        p.resolve({kind: 'error', message: `the spawn helper exited (${why})`})
      }
    }
    child.on('error', (e) => onGone(e.message))
    child.on('exit', (code, signal) => onGone(String(signal ?? code)))
    this.child = child
    return child
  }

  run(req: SpawnRequest, onSpawn: (pid: number) => void): Promise<SpawnOutcome> {
    return new Promise((resolve) => {
      const request = {id: ++this.next, ...req}
      this.pending.set(request.id, {request, onSpawn, resolve})
      try {
        this.ensure().send(request)
      } catch (e) {
        this.pending.delete(request.id)
        resolve({kind: 'error', message: `the spawn helper is unavailable: ${errorMessage(e)}`})
      }
    })
  }

  /** The helper's PID while it runs. */
  get pid(): number | null {
    return this.child?.pid ?? null
  }

  close(): void {
    if (this.child?.connected) this.child.disconnect()
    this.child = null
  }
}
