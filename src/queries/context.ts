import type {Db} from '../schema/db.js'
import {uuidv7} from '../schema/ids.js'
import type {EventContextRow} from '../schema/types.js'

/** event_context: the baggage ledger. */

export function findContext(db: Db, id: string): EventContextRow | undefined {
  return db.get(db.k.selectFrom('event_context').selectAll().where('id', '=', id))
}

/** The lineage of a context row, root to leaf (walks parent_id by primary key; stops on a cycle). */
export function contextLineage(db: Db, id: string, maxDepth = 1024): EventContextRow[] {
  const chain: EventContextRow[] = []
  const seen = new Set<string>()
  let next: string | null = id
  while (next && !seen.has(next) && chain.length < maxDepth) {
    seen.add(next)
    const row = findContext(db, next)
    if (!row) break
    chain.push(row)
    next = row.parent_id
  }
  return chain.reverse()
}

/** Append a baggage ledger row (ids are time-ordered). */
export function insertContext(db: Db, row: Omit<EventContextRow, 'id'>): EventContextRow {
  const full: EventContextRow = {id: uuidv7(), ...row}
  db.run(db.k.insertInto('event_context').values(full))
  return full
}
