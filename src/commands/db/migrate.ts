import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {openStore} from '../../schema/open.js'
import {type SchemaKind, assertMigratable, migrate, schemaState} from '../../schema/migrations.js'

export interface DbMigrateResult {
  path: string
  from: number
  to: number
  /** What the file was before: the original Go engine's format, an older one of ours, or empty. */
  was: SchemaKind
  applied: {version: number; name: string}[]
  dry_run: boolean
}

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override summary = 'Upgrade an older schema, or a database written by the original Go Ductile, to this version'
  static override description =
    'All pending migrations run in one transaction: on failure the file is as it was and the message names the failing step. From the original format it rewrites every RFC 3339 timestamp to ours, adds job_log.started_at (filled from job_attempts), leaves legacy plugin_facts rows with NULL seq alone and seeds storage_sequences to the highest seq. Back up first: `ductile db backup --to FILE`.'
  static override examples = ['<%= config.bin %> db migrate --db ./state.db', '<%= config.bin %> db migrate --dry-run --json']

  static override flags = {
    'dry-run': Flags.boolean({description: 'say what would run, change nothing'}),
    quiet: Flags.boolean({char: 'q', description: 'print nothing on success'}),
  }

  async run(): Promise<DbMigrateResult> {
    const db = openStore(this.dbPath(), {mode: this.flags['dry-run'] ? 'read' : 'write', check: assertMigratable})
    try {
      const before = this.guard(db, () => schemaState(db))
      if (this.flags['dry-run']) {
        const {MIGRATIONS} = await import('../../schema/migrations.js')
        const pending = MIGRATIONS.filter((m) => m.version > before.version).map((m) => ({version: m.version, name: m.name}))
        if (this.human())
          this.log(pending.length ? `Would apply to ${db.path}:\n${pending.map((p) => `  ${p.version} ${p.name}`).join('\n')}` : `${db.path} is current.`)
        return {path: db.path, from: before.version, to: before.latest, was: before.kind, applied: pending, dry_run: true}
      }
      const tty = process.stderr.isTTY && this.human() && !this.flags.quiet
      const r = this.guard(db, () => migrate(db, tty ? (m, s) => process.stderr.write(`\r\x1b[K  ${m.version} ${m.name}: ${s.name}`) : undefined))
      if (tty) process.stderr.write('\r\x1b[K')
      if (this.human() && !this.flags.quiet) {
        if (r.applied.length === 0) this.log(`${db.path} is current (schema version ${r.to}).`)
        else {
          this.log(`Migrated ${db.path} from ${before.kind === 'original' ? 'the original Go Ductile format' : `version ${r.from}`} to version ${r.to}:`)
          for (const a of r.applied) this.log(`  ${a.version} ${a.name}`)
        }
      }
      return {path: db.path, from: r.from, to: r.to, was: before.kind, applied: r.applied, dry_run: false}
    } finally {
      db.close()
    }
  }
}
