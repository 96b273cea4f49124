import type {Compilable, RawBuilder} from 'kysely'

/**
 * What differs between the two stores inside a query, in one place per dialect (sqlite.ts, postgres.ts):
 * the query modules ask `db.dialect` for these and are otherwise the same for both. Everything else that
 * differs (pragmas against settings, vacuum, backup, file sizes, the schema's DDL) lives in those two files
 * and in the modules that read them (commands check `db.kind`).
 */
export interface Dialect {
  /** Whole-second duration of a job_log row, exactly as the reference computes it (strftime('%s') differences). */
  durationSecExpr(): RawBuilder<number | null>
  /** Fractional-day duration: the order among attempts of the same whole-second duration. */
  durationDaysExpr(): RawBuilder<number | null>
  /** Millisecond duration between a job_log row's started_at and completed_at. */
  durationMsExpr(): RawBuilder<number | null>
  /**
   * Pin a query's table to an index where SQLite's planner, without statistics, would scan and sort
   * (INDEXED BY). PostgreSQL keeps statistics (autovacuum's ANALYZE) and has no such clause: unchanged there.
   */
  withIndex<O>(query: Compilable<O>, table: string, index: string): Compilable<O>
  /** A row's physical address, for deletes in batches: SQLite's rowid, PostgreSQL's ctid. */
  readonly rowId: string
}
