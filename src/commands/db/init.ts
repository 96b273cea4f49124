import {BaseCommand} from '../../cli/base.js'
import {restrictPermissions} from '../../schema/db.js'
import {openStore} from '../../schema/open.js'
import {LATEST_VERSION, assertInitialisable, initSchema} from '../../schema/migrations.js'

export interface DbInitResult {
  path: string
  created: boolean
  version: number
}

export default class DbInit extends BaseCommand<typeof DbInit> {
  static override summary = 'Create the database and its schema (a no-op on a current database)'
  static override description =
    'Creates the file (mode 0600, directory 0700) with incremental auto-vacuum, WAL and every table and index. An existing database of an older or the original format is left alone: run `ductile db migrate`.'
  static override examples = ['<%= config.bin %> db init --db ./ductile.db', 'DUCTILE_DB=/var/lib/ductile/ductile.db <%= config.bin %> db init']

  async run(): Promise<DbInitResult> {
    const path = this.dbPath()
    const db = openStore(path, {mode: 'create', check: assertInitialisable})
    try {
      const r = this.guard(db, () => initSchema(db))
      const created = r.applied.length > 0
      restrictPermissions(db.path)
      if (this.human())
        this.log(created ? `Created ${db.path} (schema version ${LATEST_VERSION}).` : `${db.path} is already initialised (schema version ${r.to}).`)
      return {path: db.path, created, version: r.to}
    } finally {
      db.close()
    }
  }
}
