import {BaseCommand} from '../../cli/base.js'
import {renderTable} from '../../cli/render.js'
import {countRowsPerTable} from '../../queries/info.js'
import {openStore} from '../../schema/open.js'
import {asSqlite} from '../../schema/db.js'
import {type PgServerStats, pgServerStats} from '../../schema/pg-admin.js'
import {listEngines} from '../../queries/engines.js'
import type {EngineRow} from '../../schema/types.js'
import {type SchemaState, schemaState} from '../../schema/migrations.js'
import {type FileStats, fileStats} from '../../schema/sqlite.js'

export type DbInfoResult = (({store: 'sqlite'} & FileStats) | ({store: 'postgres'; path: string; engines: EngineRow[]} & PgServerStats)) & {
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
    const db = openStore(this.dbPath(), {mode: 'read'})
    let r: DbInfoResult
    try {
      r = this.guard(db, () => {
        const lite = asSqlite(db)
        const common = {schema: schemaState(db), tables: countRowsPerTable(db)}
        if (lite) return {store: 'sqlite' as const, ...fileStats(lite), ...common}
        const engines = common.schema.kind === 'ours' && common.schema.version >= 7 ? listEngines(db, 10) : []
        return {store: 'postgres' as const, path: db.path, engines, ...pgServerStats(db), ...common}
      })
    } finally {
      db.close()
    }
    if (this.human()) {
      const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`
      this.log(`path          ${r.path}`)
      if (r.store === 'sqlite') {
        this.log(`file          ${mb(r.fileBytes)}   wal ${mb(r.walBytes)}`)
        this.log(
          `pages         ${r.pageCount} × ${r.pageSize} B, ${r.freelistCount} free (${r.pageCount ? ((100 * r.freelistCount) / r.pageCount).toFixed(1) : '0'}%)`,
        )
        this.log(
          `journal_mode  ${r.journalMode}   synchronous ${SYNC_NAMES[r.synchronous] ?? r.synchronous} (${r.synchronous})   auto_vacuum ${AUTO_VACUUM_NAMES[r.autoVacuum] ?? r.autoVacuum}`,
        )
      } else {
        this.log(`server        PostgreSQL ${r.serverVersion}${r.inRecovery ? ' (a standby: read only)' : ''}`)
        this.log(`database      ${r.database}, ${mb(r.databaseBytes)}`)
        for (const e of r.engines)
          this.log(`engine        ${e.host} pid ${e.pid} ${e.stopped_at ? `stopped ${e.stopped_at} (${e.stop_reason ?? ''})` : `heartbeat ${e.heartbeat_at}`}`)
      }
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
