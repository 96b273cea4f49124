import {BaseCommand} from '../../cli/base.js'
import {openStore} from '../../schema/open.js'
import {type SchemaProblem, type SchemaState, checkSchema} from '../../schema/migrations.js'

export interface DbCheckResult {
  path: string
  ok: boolean
  schema: SchemaState
  problems: SchemaProblem[]
}

export default class DbCheck extends BaseCommand<typeof DbCheck> {
  static override summary = 'Validate the schema: every table, column, index and the schema version'
  static override description = 'Read-only. Names each missing table, column or index with the exact command that fixes it. Exit 1 when anything is missing.'
  static override examples = ['<%= config.bin %> db check', '<%= config.bin %> db check --db ./ductile.db --json']

  async run(): Promise<DbCheckResult> {
    const db = openStore(this.dbPath(), {mode: 'read'})
    let result: DbCheckResult
    try {
      const {state, problems} = this.guard(db, () => checkSchema(db))
      result = {path: db.path, ok: !problems.some((p) => p.severity === 'error'), schema: state, problems}
    } finally {
      db.close()
    }
    if (this.human()) {
      if (result.problems.length === 0) this.log(`${result.path}: schema version ${result.schema.version}, all tables, columns and indexes present.`)
      for (const p of result.problems) this.log(`${p.severity === 'error' ? 'missing' : 'warning'}: ${p.message}\n  fix: ${p.fix}`)
    }
    if (!result.ok) {
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(1)
    }
    return result
  }
}
