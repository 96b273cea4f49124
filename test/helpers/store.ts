import {randomBytes} from 'node:crypto'
import {after} from 'node:test'

import {type Db, type SqliteDb, asSqlite, openDb} from '../../src/schema/db.js'
import {initSchema} from '../../src/schema/migrations.js'
import {openStore} from '../../src/schema/open.js'

/**
 * The store a test file runs against. scripts/test.js runs every file once on SQLite and, for the files that
 * say `// stores: sqlite, postgres`, once more with DUCTILE_TEST_STORE=postgres against a throwaway
 * PostgreSQL cluster it started (DUCTILE_TEST_PG: its admin URL). One suite, parametrised: a test that is
 * about the SQLite file itself says so with `{skip: sqliteOnly}`.
 */
export const STORE: 'sqlite' | 'postgres' = process.env.DUCTILE_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite'
export const onPostgres = STORE === 'postgres'
/** For `test(name, {skip: sqliteOnly}, fn)`: the reason, on PostgreSQL. */
export const sqliteOnly: string | false = onPostgres ? 'about the SQLite file' : false

/** The database every PostgreSQL test database is copied from: the schema, created once by scripts/test.js. */
export const PG_TEMPLATE = 'ductile_template'

const created: string[] = []
let admin: Db | null = null

function adminDb(): Db {
  const url = process.env.DUCTILE_TEST_PG
  if (!url) throw new Error('DUCTILE_TEST_STORE=postgres needs DUCTILE_TEST_PG (scripts/test.js starts a cluster and sets it)')
  admin ??= openStore(url, {mode: 'write'})
  return admin
}

after(() => {
  if (!admin) return
  if (!process.env.KEEP_TEST_DIRS) for (const name of created) admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  admin.close()
  admin = null
})

/** A new, empty PostgreSQL database (or one with the current schema), dropped when the test file ends. */
export function freshPgUrl(opts: {schema: boolean}): string {
  const db = adminDb()
  const name = `t_${randomBytes(6).toString('hex')}`
  db.exec(`CREATE DATABASE ${name} TEMPLATE ${opts.schema ? PG_TEMPLATE : 'template0'}`)
  created.push(name)
  const u = new URL(process.env.DUCTILE_TEST_PG as string)
  u.pathname = `/${name}`
  return u.toString()
}

/**
 * Where a test's database lives: `file` on SQLite, a fresh database's URL on PostgreSQL; and a write handle
 * on it with the current schema.
 */
export function freshStore(file: string): {db: Db; path: string} {
  if (!onPostgres) {
    const db = openDb(file, {mode: 'create'})
    initSchema(db)
    return {db, path: file}
  }
  const path = freshPgUrl({schema: true})
  return {db: openStore(path, {mode: 'write'}), path}
}

/** The SQLite handle of a test that is about the file (pragmas, sqlite_master): fails on any other store. */
export function lite(db: Db): SqliteDb {
  const l = asSqlite(db)
  if (!l) throw new Error('this test needs SQLite (mark it {skip: sqliteOnly})')
  return l
}
