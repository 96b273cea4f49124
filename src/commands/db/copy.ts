import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {progress} from '../../cli/progress.js'
import {DuctileError, usageError} from '../../errors.js'
import {liveLockHolder} from '../../lib/lock.js'
import {displayTarget, isPgUrl} from '../../schema/pg-url.js'
import {type CopiedTable, copyDatabase} from '../../queries/copy.js'
import {countRowsPerTable} from '../../queries/info.js'
import {listLiveEngines} from '../../queries/engines.js'
import type {Db} from '../../schema/db.js'
import {assertSchemaCurrent, initSchema, schemaState} from '../../schema/migrations.js'
import {openStore} from '../../schema/open.js'
import {formatTs} from '../../schema/time.js'

export interface DbCopyResult {
  from: string
  to: string
  tables: CopiedTable[]
  total_rows: number
}

export default class DbCopy extends BaseCommand<typeof DbCopy> {
  static override summary = 'Copy a whole database to another store: a SQLite file to PostgreSQL, and back'
  static override description =
    `Every table, in batches in primary-key order, with progress; then the row counts are compared. The destination must be new: a file that does not exist yet, or a PostgreSQL database with no tables (create it with createdb). The source is read in one snapshot; stop its engines first so nothing is written after it (a running engine is refused unless --force).

Credentials come from the URL, PGPASSWORD or ~/.pgpass; they are never printed.`
  static override examples = [
    "<%= config.bin %> db copy --from /var/lib/ductile/ductile.db --to 'postgres://ductile@db1/ductile'",
    "<%= config.bin %> db copy --from 'postgres://ductile@db1/ductile' --to ./ductile-copy.db --json",
  ]
  static override usesDbPath = false

  static override flags = {
    from: Flags.string({description: 'the database to copy (a file path or a postgres:// URL)', required: true}),
    to: Flags.string({description: 'the new database (a file that does not exist, or an empty PostgreSQL database)', required: true}),
    'batch-size': Flags.integer({description: 'rows per batch', default: 5000, min: 1, max: 100_000}),
    force: Flags.boolean({description: 'copy even while an engine runs on the source (what it writes after the snapshot is not copied)'}),
  }

  async run(): Promise<DbCopyResult> {
    const f = this.flags
    if (displayTarget(f.from) === displayTarget(f.to)) throw usageError('--from and --to name the same database')
    const src = this.guard({path: displayTarget(f.from)}, () => openStore(f.from, {mode: 'read'}))
    try {
      this.guard(src, () => assertSchemaCurrent(src))
      if (!f.force) this.refuseRunningEngine(src, f.from)
      const dst = this.guard({path: displayTarget(f.to)}, () => openStore(f.to, {mode: 'create'}))
      try {
        if (schemaState(dst).kind !== 'empty') {
          throw new DuctileError('conflict', `${dst.path} is not empty: db copy writes only into a new database`, {
            hint: isPgUrl(f.to) ? 'create an empty database (`createdb NAME`) and copy into it' : 'name a file that does not exist yet',
          })
        }
        const bar = progress(this.human())
        const tables = this.guard(dst, () => {
          initSchema(dst)
          return copyDatabase(src, dst, {batchSize: f['batch-size'], onProgress: (p) => bar.update(`${p.table}: ${p.copied} / ${p.total} rows`)})
        })
        bar.done()
        // The destination's rows per table, as `db info` counts them.
        const counts = new Map(this.guard(dst, () => countRowsPerTable(dst)).map((t) => [t.table, t.rows]))
        const short = tables.filter((t) => counts.get(t.table) !== t.rows)
        if (short.length) {
          throw new DuctileError('db_error', `the copy's row counts differ: ${short.map((t) => `${t.table} ${counts.get(t.table)} of ${t.rows}`).join(', ')}`, {
            hint: 'something else wrote to the destination during the copy; drop it and copy again',
          })
        }
        const result: DbCopyResult = {from: src.path, to: dst.path, tables, total_rows: tables.reduce((n, t) => n + t.rows, 0)}
        if (this.human()) {
          this.log(`Copied ${src.path} to ${dst.path}: ${result.total_rows} rows in ${tables.length} tables (row counts checked).`)
          for (const t of tables.filter((x) => x.rows > 0)) this.log(`  ${t.table.padEnd(28)} ${String(t.rows).padStart(10)}`)
        }
        return result
      } finally {
        dst.close()
      }
    } finally {
      src.close()
    }
  }

  /** A copy of a database an engine still writes would miss what it writes next. */
  private refuseRunningEngine(src: Db, target: string): void {
    const hint = 'stop the engine(s) first, or pass --force for a snapshot of this moment'
    if (!isPgUrl(target)) {
      const holder = liveLockHolder(src.path)
      if (holder) throw new DuctileError('engine_running', `an engine (PID ${holder.pid}) is running on ${src.path}`, {hint})
      return
    }
    const cutoff = formatTs(new Date(Date.now() - 60_000))
    const live = listLiveEngines(src).filter((e) => e.heartbeat_at >= cutoff)
    if (live.length) {
      throw new DuctileError('engine_running', `${live.length} engine(s) are running on ${src.path}: ${live.map((e) => `${e.host} pid ${e.pid}`).join(', ')}`, {
        hint,
      })
    }
  }
}
