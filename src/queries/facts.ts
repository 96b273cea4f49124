import {sql} from 'kysely'

import type {Db} from '../schema/db.js'
import {FACTS_NULL_SEQ_LAST} from '../schema/indexes.js'
import type {PluginFact} from '../schema/types.js'

/** plugin_facts (the durable record) and plugin_state (its compatibility view). */

/**
 * Reference: "Inspect recent append-only plugin facts": seq NULLs last, seq DESC, created_at DESC, in the
 * reference's own spelling, straight off plugin_facts_reference_order_idx (which sqlite3 uses for the
 * reference's query too); with a fact type, off (plugin_name, fact_type, seq). Neither sorts the plugin's rows.
 */
export function listFacts(db: Db, opts: {plugin: string; factType?: string; limit: number}): PluginFact[] {
  const q = db.k.selectFrom('plugin_facts').selectAll().where('plugin_name', '=', opts.plugin)
  // One order, two spellings: SQLite sorts NULL below every number, so `seq DESC` already puts NULL seqs
  // last, as the type index gives them; the reference spells it with a CASE, and so does its index.
  if (opts.factType) return db.all(q.where('fact_type', '=', opts.factType).orderBy('seq', 'desc').orderBy('created_at', 'desc').limit(opts.limit))
  return db.all(q.orderBy(sql.raw(FACTS_NULL_SEQ_LAST), 'asc').orderBy('seq', 'desc').orderBy('created_at', 'desc').limit(opts.limit))
}

/**
 * The facts a plugin had at a moment: those created at or before `at`, newest first (created_at, then seq),
 * off (plugin_name, created_at). A fact is the plugin's state snapshot when it was written, so the first is
 * the state as it was then. Legacy rows without seq are ordered by created_at alone (the reference warns
 * they are only approximately ordered).
 */
export function listFactsAt(db: Db, opts: {plugin: string; at: string; factType?: string; limit: number}): PluginFact[] {
  let q = db.k.selectFrom('plugin_facts').selectAll().where('plugin_name', '=', opts.plugin).where('created_at', '<=', opts.at)
  if (opts.factType) q = q.where('fact_type', '=', opts.factType)
  return db.all(q.orderBy('created_at', 'desc').orderBy('seq', 'desc').limit(opts.limit))
}

/** Reference: "Inspect a plugin's compatibility view". */
export function getPluginState(db: Db, plugin: string): {state: string; updated_at: string | null} | undefined {
  return db.get(db.k.selectFrom('plugin_state').select(['state', 'updated_at']).where('plugin_name', '=', plugin))
}
