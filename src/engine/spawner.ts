import {type ChildProcess, fork} from 'node:child_process'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * The engine side of the spawn helper (bin/ductile-spawner.cjs): with max_workers 2 or more, plugin
 * processes are started by a small long-lived child process instead of the engine itself. fork() copies
 * the caller's page tables, so a spawn from the engine (tens to hundreds of MB) cost about 1.5–2 ms of its
 * main thread; from the helper it costs less, on another core. The engine keeps timeouts and kills: it
 * signals the plugin's group by PID.
 */

export interface SpawnRequest {
  entrypoint: string
  cwd?: string
  env: Record<string, string>
  input: string
  stdoutCap: number
  stderrCap: number
}

export type SpawnOutcome =
  | {kind: 'exit'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; overflow: boolean; stderrTruncated: boolean}
  | {kind: 'error'; message: string}

interface Pending {
  onSpawn: (pid: number) => void
  resolve: (o: SpawnOutcome) => void
}

/** bin/ductile-spawner.cjs, found from this module whether it runs from src/ or from the bundled dist/. */
function helperPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'bin', 'ductile-spawner.cjs')
    if (existsSync(p)) return p
    dir = dirname(dir)
  }
  throw new Error('bin/ductile-spawner.cjs not found beside the package')
}

export class Spawner {
  private child: ChildProcess | null = null
  private readonly pending = new Map<number, Pending>()
  private next = 0

  private ensure(): ChildProcess {
    if (this.child && this.child.connected) return this.child
    const child = fork(helperPath(), [], {stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: []})
    child.on('message', (m: {id: number; type: string; pid?: number; message?: string} & Omit<Extract<SpawnOutcome, {kind: 'exit'}>, 'kind'>) => {
      const p = this.pending.get(m.id)
      if (!p) return
      if (m.type === 'spawned') p.onSpawn(m.pid!)
      else if (m.type === 'error') {
        this.pending.delete(m.id)
        p.resolve({kind: 'error', message: m.message ?? 'spawn failed'})
      } else if (m.type === 'exit') {
        this.pending.delete(m.id)
        p.resolve({kind: 'exit', code: m.code, signal: m.signal, stdout: m.stdout, stderr: m.stderr, overflow: m.overflow, stderrTruncated: m.stderrTruncated})
      }
    })
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null
      // Runs in flight lose their reporter: they fail (retryably) and crash recovery handles their processes.
      for (const [id, p] of this.pending) {
        this.pending.delete(id)
        p.resolve({kind: 'error', message: `the spawn helper exited (${signal ?? code})`})
      }
    })
    this.child = child
    return child
  }

  run(req: SpawnRequest, onSpawn: (pid: number) => void): Promise<SpawnOutcome> {
    return new Promise((resolve) => {
      const id = ++this.next
      this.pending.set(id, {onSpawn, resolve})
      try {
        this.ensure().send({id, ...req})
      } catch (e) {
        this.pending.delete(id)
        resolve({kind: 'error', message: `the spawn helper is unavailable: ${(e as Error).message}`})
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
