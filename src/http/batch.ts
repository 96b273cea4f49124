import {type Db, translateSqliteError} from '../schema/db.js'
import {DuctileError} from '../errors.js'

/**
 * Group commit for the listeners: the writes requests ask for within one turn of the event loop go into one
 * transaction, and each request is answered after that commit (a 202 still means committed). One commit per
 * job wrote every page it touched again (about ten: the queue, the transitions and their indexes); a commit
 * of thirty jobs writes most of those pages once.
 */
export class CommitBatch {
  private queue: {fn: () => unknown; savepoint: boolean; resolve: (v: unknown) => void; reject: (e: unknown) => void}[] = []
  private scheduled = false

  constructor(
    private readonly db: Db,
    /** After each commit (the worker is woken once per batch). */
    private readonly onCommit: () => void,
  ) {}

  /**
   * Run `fn` in the next batch's transaction. `savepoint`: its writes are undone on its own when it throws
   * (work that may fail after writing, such as routing); without, it must not write before it can fail.
   */
  run<T>(fn: () => T, o: {savepoint?: boolean} = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({fn, savepoint: o.savepoint === true, resolve: resolve as (v: unknown) => void, reject})
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    const items = this.queue
    this.queue = []
    const results: ({ok: true; value: unknown} | {ok: false; error: unknown})[] = []
    try {
      this.db.tx(() => {
        for (const it of items) {
          try {
            results.push({ok: true, value: it.savepoint ? this.db.undoUnless(it.fn, () => true) : it.fn()})
          } catch (error) {
            // A refusal (ours) comes before any write; anything else may have written half: the batch fails.
            if (!it.savepoint && !(error instanceof DuctileError)) throw error
            results.push({ok: false, error})
          }
        }
      })
    } catch (error) {
      // A locked, full or read-only database says so (503 over HTTP), not as an internal error.
      const e = translateSqliteError(error, this.db.path)
      for (const it of items) it.reject(e)
      return
    }
    this.onCommit()
    for (const [i, it] of items.entries()) {
      const r = results[i]
      if (r?.ok) it.resolve(r.value)
      else it.reject(r?.error)
    }
  }
}
