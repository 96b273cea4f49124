import {Flags} from '@oclif/core'
import {rmSync} from 'node:fs'
import {resolve} from 'node:path'

import {BaseCommand} from '../../cli/base.js'
import {mib, progress} from '../../cli/progress.js'
import {DuctileError} from '../../errors.js'
import {createPrivateFile} from '../../lib/files.js'
import {asSqlite, openDb} from '../../schema/db.js'
import {backupTo, fileSize, integrityCheck} from '../../schema/sqlite.js'

export interface DbBackupResult {
  from: string
  to: string
  bytes: number
  pages: number
  integrity: 'ok'
}

export default class DbBackup extends BaseCommand<typeof DbBackup> {
  static override summary = 'An online, consistent copy of the database, checked with PRAGMA integrity_check'
  static override description = "Uses SQLite's backup API: the engine keeps writing while it copies. The copy is created 0600; an existing file is refused."
  static override examples = ['<%= config.bin %> db backup --to /backups/ductile-$(date +%F).db', '<%= config.bin %> db backup --to ./copy.db --json']

  static override flags = {
    to: Flags.string({description: 'the new file', required: true}),
    quiet: Flags.boolean({char: 'q', description: 'print nothing on success'}),
  }

  async run(): Promise<DbBackupResult> {
    const to = resolve(this.flags.to)
    const any = this.openRead()
    const db = asSqlite(any)
    if (!db) {
      throw new DuctileError('usage', `${any.path} is a PostgreSQL database: back it up with pg_dump, not db backup`, {
        hint: "pg_dump --format=custom --file=ductile-$(date +%F).dump 'postgres://USER@HOST/DB' (online and consistent; restore with pg_restore), or `ductile db copy --from URL --to FILE.db` for a SQLite copy",
      })
    }
    // Private from its first byte: the copy holds every payload, result and fact.
    createPrivateFile(to)
    const bar = progress(this.human() && !this.flags.quiet)
    let pages: number
    try {
      ;({pages} = await backupTo(db, to, (done, total) => bar.update(`copied ${done} / ${total} pages`)))
    } catch (err) {
      bar.done()
      rmSync(to, {force: true})
      throw err
    }
    bar.done()
    const copy = openDb(to, {mode: 'read'})
    let check: string[]
    try {
      check = integrityCheck(copy)
    } finally {
      copy.close()
    }
    if (check.length !== 1 || check[0] !== 'ok') {
      throw new DuctileError('db_corrupt', `the copy ${to} failed integrity_check: ${check.slice(0, 5).join('; ')}`, {
        hint: 'run `ductile doctor` on the source database',
      })
    }
    const result: DbBackupResult = {from: db.path, to, bytes: fileSize(to), pages, integrity: 'ok'}
    if (this.human() && !this.flags.quiet) this.log(`Backed up ${db.path} to ${to} (${mib(result.bytes)}, ${pages} pages, integrity ok).`)
    return result
  }
}
