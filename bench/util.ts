import {enqueueJob} from '../src/queries/queue.js'
import type {Db} from '../src/schema/db.js'
import {formatTs} from '../src/schema/time.js'

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
      const r = enqueueJob(db, {plugin, command: 'poll', payload: payload(i), submittedBy: 'bench', maxAttempts: 1, dedupeTtlMs: 0, now: at, dedupeSince: at})
      if (r.status === 'enqueued') ids.push(r.job.id)
    }
  })
  return ids
}
