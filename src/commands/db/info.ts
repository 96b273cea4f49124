import {BaseCommand} from '../../cli/base.js'
import {renderTable} from '../../cli/render.js'
import {countRowsPerTable} from '../../queries/info.js'
import {openDb} from '../../schema/db.js'
import {type SchemaState, schemaState} from '../../schema/migrations.js'
import {type FileStats, fileStats} from '../../schema/sqlite.js'

export interface DbInfoResult extends FileStats {
  schema: SchemaState
  tables: {table: string; rows: number | null}[]
}

const SYNC_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA']
const AUTO_VACUUM_NAMES = ['NONE', 'FULL', 'INCREMENTAL']

export default class DbInfo extends BaseCommand<typeof DbInfo> {
  static override summary = 'The database file: path, sizes, pages, freelist, pragmas, schema version, rows per table'
  static override description = 'Read-only; works on a database of any version (it does not require the current schema).'
  static override examples = ['<%= config.bin %> db info', '<%= config.bin %> db info --db ./ductile.db --json']

  async run(): Promise<DbInfoResult> {
    const db = openDb(this.dbPath(), {mode: 'read'})
    let r: DbInfoResult
    try {
      r = this.guard(db, () => ({...fileStats(db), schema: schemaState(db), tables: countRowsPerTable(db)}))
    } finally {
      db.close()
    }
    if (this.human()) {
      const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`
      this.log(`path          ${r.path}`)
      this.log(`file          ${mb(r.fileBytes)}   wal ${mb(r.walBytes)}`)
      this.log(
        `pages         ${r.pageCount} × ${r.pageSize} B, ${r.freelistCount} free (${r.pageCount ? ((100 * r.freelistCount) / r.pageCount).toFixed(1) : '0'}%)`,
      )
      this.log(
        `journal_mode  ${r.journalMode}   synchronous ${SYNC_NAMES[r.synchronous] ?? r.synchronous} (${r.synchronous})   auto_vacuum ${AUTO_VACUUM_NAMES[r.autoVacuum] ?? r.autoVacuum}`,
      )
      this.log(
        `schema        ${r.schema.kind === 'original' ? 'original Go Ductile format (run `ductile db migrate`)' : r.schema.kind === 'empty' ? 'empty (run `ductile db init`)' : `version ${r.schema.version} of ${r.schema.latest}`}`,
      )
      this.log(
        renderTable(
          [
            {header: 'TABLE', get: (t: {table: string; rows: number | null}) => t.table},
            {header: 'ROWS', get: (t) => (t.rows === null ? 'missing' : t.rows), align: 'right'},
          ],
          r.tables,
        ),
      )
    }
    return r
  }
}
