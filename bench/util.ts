import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {enqueueJob} from '../src/queries/queue.js'
import {type Db, openDb} from '../src/schema/db.js'
import {initSchema} from '../src/schema/migrations.js'
import {formatTs, parseTs} from '../src/schema/time.js'

/** One benchmark figure next to its goal, in the form every section prints. */
export const line = (label: string, value: string, goal: string, ok: boolean) =>
  console.log(`${ok ? 'ok  ' : 'MISS'}  ${label.padEnd(44)} ${value.padStart(14)}   goal ${goal}`)

/**
 * Queue `n` jobs of a plugin, one millisecond apart as real enqueues are (jobs that share a created_at sort by
 * id, which no real queue shows at this scale), in one transaction. Returns their ids.
 */
export function enqueueMany(db: Db, plugin: string, n: number, payload: (i: number) => unknown = () => ({})): string[] {
  const base = Date.now() - n
  const ids: string[] = []
  db.tx(() => {
    for (let i = 0; i < n; i++) {
      const at = formatTs(new Date(base + i))
      const r = enqueueJob(db, {plugin, command: 'poll', payload: payload(i), submittedBy: 'bench', maxAttempts: 1, dedupeTtlMs: 0, now: at})
      if (r.status === 'enqueued') ids.push(r.job.id)
    }
  })
  return ids
}

/**
 * `n` jobs of the trivial sh plugin drained by the engine as operators run it (`bin/run.js engine start`, its
 * own process), from the moment it is spawned (its start-up counts) to the last job's completed_at.
 * `workers` undefined leaves max_workers at its default; `service` adds lines to the config's service block.
 * `beside` starts whatever should run alongside once the engine is spawned, and is stopped when the queue is
 * empty.
 */
export async function drainByEngineProcess<T>(
  root: string,
  n: number,
  o: {workers?: number; service?: string; beside?: (ctx: {dbPath: string; ids: string[]}) => {stop: () => Promise<T>}} = {},
): Promise<{rate: number; beside: T | undefined}> {
  const dir = mkdtempSync(join(tmpdir(), 'ductile-bench-'))
  try {
    const configPath = join(dir, 'config.yaml')
    writeFileSync(
      configPath,
      `service:\n${o.workers ? `  max_workers: ${o.workers}\n` : ''}${o.service ?? ''}  tick_interval: 1h\nstate:\n  path: ./d.db\nplugin_roots:\n  - ${join(root, 'test/fixtures/plugins')}\n`,
    )
    const dbPath = join(dir, 'd.db')
    const db = openDb(dbPath, {mode: 'create'})
    initSchema(db)
    const ids = enqueueMany(db, 'echo-sh', n)
    const left = db.sqlite.prepare(`SELECT COUNT(*) FROM job_queue WHERE status IN ('queued', 'running')`).pluck()
    const t0 = Date.now()
    const cmd = [process.execPath, join(root, 'bin/run.js'), 'engine', 'start', '--config', configPath, '--log-level', 'error']
    const engine: ChildProcess = spawn(cmd[0], cmd.slice(1), {stdio: 'ignore'})
    const exited = new Promise((r) => engine.on('exit', r))
    const along = o.beside?.({dbPath, ids})
    let result: T | undefined
    try {
      while ((left.get() as number) > 0) {
        if (engine.exitCode !== null || engine.signalCode !== null)
          throw new Error(`engine bench: the engine exited (${engine.exitCode ?? engine.signalCode}) with jobs left`)
        await new Promise((r) => setTimeout(r, 100))
      }
    } finally {
      engine.kill('SIGTERM')
      result = await along?.stop()
    }
    await exited
    const last = db.sqlite.prepare(`SELECT MAX(completed_at) FROM job_queue`).pluck().get() as string
    const ok = db.sqlite.prepare(`SELECT COUNT(*) FROM job_queue WHERE status = 'succeeded'`).pluck().get()
    db.close()
    if (ok !== n) throw new Error(`engine bench: ${ok} of ${n} succeeded`)
    const end = parseTs(last)?.getTime() ?? Number.NaN
    return {rate: n / ((end - t0) / 1000), beside: result}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}
