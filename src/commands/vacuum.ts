import {Flags} from '@oclif/core'
import {rmSync} from 'node:fs'
import {resolve} from 'node:path'

import {BaseCommand} from '../cli/base.js'
import {mib, progress} from '../cli/progress.js'
import {liveLockHolder} from '../lib/lock.js'
import {DuctileError, usageError} from '../errors.js'
import {createPrivateFile} from '../lib/files.js'
import {type Db, asSqlite} from '../schema/db.js'
import {type PgTableHealth, pgTableHealth, pgVacuumAnalyze} from '../schema/pg-admin.js'
import {storeSize} from '../schema/open.js'
import {autoVacuumMode, checkpoint, fileSize, fileStats, fullVacuum, incrementalVacuum, vacuumInto} from '../schema/sqlite.js'

export interface VacuumResult {
  /** postgres: nothing to reclaim by hand (autovacuum does it); postgres-analyze: VACUUM (ANALYZE) ran on `tables`. */
  mode: 'incremental' | 'full' | 'into' | 'postgres' | 'postgres-analyze'
  /** PostgreSQL: our tables' dead rows and last vacuum, as the server counts them. */
  tables?: PgTableHealth[]
  path: string
  into?: string
  before: {fileBytes: number; walBytes: number; freelistPages: number}
  after: {fileBytes: number; walBytes: number; freelistPages: number}
  freedPages: number
}

export default class Vacuum extends BaseCommand<typeof Vacuum> {
  static override summary = 'Reclaim free space; prints the file and WAL sizes before and after'
  static override description =
    `By default frees pages with incremental vacuum in small steps: safe while the engine runs (databases made by \`db init\` use incremental auto-vacuum). --full rewrites the whole file with VACUUM, holding the write lock throughout (about 2 s per GB): it is refused while an engine holds the lock unless --force, and it also switches an older file to incremental auto-vacuum. --into FILE writes a compacted copy and leaves the live file alone.

On PostgreSQL, autovacuum reclaims dead rows and refreshes statistics by itself: vacuum shows each table's dead rows and last vacuum, and --analyze runs VACUUM (ANALYZE) on our tables now (online; it takes no lock that stops the engines).`
  static override examples = [
    '<%= config.bin %> vacuum',
    '<%= config.bin %> vacuum --full',
    '<%= config.bin %> vacuum --into /backups/ductile-compact.db',
    "<%= config.bin %> vacuum --db 'postgres://ductile@db1/ductile' --analyze",
  ]

  static override flags = {
    full: Flags.boolean({description: 'rewrite the whole file (VACUUM)'}),
    force: Flags.boolean({description: 'run --full even while an engine is running'}),
    into: Flags.string({description: 'write a compacted copy to this new file instead'}),
    quiet: Flags.boolean({char: 'q', description: 'print nothing on success'}),
    analyze: Flags.boolean({description: 'PostgreSQL: run VACUUM (ANALYZE) on our tables now'}),
  }

  async run(): Promise<VacuumResult> {
    const f = this.flags
    if (f.full && f.into) throw usageError('--full and --into do not go together')
    const any = this.openWrite()
    const db = asSqlite(any)
    if (!db) return this.postgres(any)
    if (f.analyze) throw usageError('--analyze is for PostgreSQL: SQLite refreshes statistics with `PRAGMA optimize` (the engine runs it at stop)')
    const snap = () => {
      const s = fileStats(db)
      return {fileBytes: s.fileBytes, walBytes: s.walBytes, freelistPages: s.freelistCount}
    }
    const before = snap()
    let mode: VacuumResult['mode'] = 'incremental'
    let freedPages = 0
    let into: string | undefined
    if (f.into) {
      mode = 'into'
      const target = resolve(f.into)
      into = target
      // Private from its first byte: the copy holds every payload, result and fact.
      createPrivateFile(target)
      try {
        this.guard(db, () => vacuumInto(db, target))
      } catch (err) {
        rmSync(target, {force: true})
        throw err
      }
    } else if (f.full) {
      mode = 'full'
      const holder = liveLockHolder(db.path)
      if (holder && !f.force) {
        throw new DuctileError(
          'engine_running',
          `an engine (PID ${holder.pid}) is running on ${db.path}: a full VACUUM would hold the write lock throughout and stall it`,
          {
            hint: 'run `ductile vacuum` (incremental, safe while it runs), stop the engine first, or pass --force',
          },
        )
      }
      this.guard(db, () => fullVacuum(db))
      freedPages = before.freelistPages
    } else {
      if (autoVacuumMode(db) !== 2) {
        throw new DuctileError('conflict', `${db.path} does not use incremental auto-vacuum, so free pages cannot be returned step by step`, {
          hint: 'run `ductile vacuum --full` once (with the engine stopped): it reclaims the space and switches the file to incremental',
        })
      }
      const bar = progress(this.human() && !f.quiet)
      freedPages = await incrementalVacuum(db, {onProgress: (freed, left) => bar.update(`freed ${freed} pages, ${left} left`)})
      bar.done()
      checkpoint(db, 'TRUNCATE')
    }
    const after = snap()
    if (into) after.fileBytes = fileSize(into)
    if (this.human() && !f.quiet) {
      if (mode === 'into') this.log(`Wrote ${into}: ${mib(after.fileBytes)} (live file ${mib(before.fileBytes)}, WAL ${mib(before.walBytes)}, unchanged).`)
      else
        this.log(
          `${db.path}: ${mib(before.fileBytes)} → ${mib(after.fileBytes)} (WAL ${mib(before.walBytes)} → ${mib(after.walBytes)}), ${freedPages} pages freed.`,
        )
    }
    return {mode, path: db.path, into, before, after, freedPages}
  }

  /** PostgreSQL: what autovacuum has done, and VACUUM (ANALYZE) when asked. */
  private postgres(db: Db): VacuumResult {
    const f = this.flags
    if (f.full || f.into) {
      throw usageError(
        '--full and --into are for SQLite files',
        'on PostgreSQL autovacuum reclaims space; `ductile vacuum --analyze` runs VACUUM (ANALYZE) now, and pg_dump makes a compacted copy',
      )
    }
    const size = () => storeSize(db).fileBytes
    const before = size()
    const bar = progress(this.human() && !f.quiet)
    if (f.analyze) this.guard(db, () => pgVacuumAnalyze(db, (t) => bar.update(`VACUUM (ANALYZE) ${t}`)))
    bar.done()
    const tables = this.guard(db, () => pgTableHealth(db))
    const after = size()
    if (this.human() && !f.quiet) {
      this.log(
        f.analyze
          ? `${db.path}: VACUUM (ANALYZE) ran on ${tables.length} tables; the database is ${mib(after)} (${mib(before)} before).`
          : `${db.path} is PostgreSQL: autovacuum reclaims dead rows and refreshes statistics by itself (pass --analyze to run VACUUM (ANALYZE) now).`,
      )
      for (const t of tables.filter((t) => t.liveRows + t.deadRows > 0))
        this.log(
          `  ${t.table.padEnd(28)} ${String(t.liveRows).padStart(10)} live ${String(t.deadRows).padStart(9)} dead   last vacuum ${t.lastVacuum ?? 'never'}`,
        )
    }
    const z = {fileBytes: 0, walBytes: 0, freelistPages: 0}
    return {
      mode: f.analyze ? 'postgres-analyze' : 'postgres',
      path: db.path,
      before: {...z, fileBytes: before},
      after: {...z, fileBytes: after},
      freedPages: 0,
      tables,
    }
  }
}
