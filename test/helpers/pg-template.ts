// Run once by scripts/test.js before the PostgreSQL pass: the template every test database is copied from
// (store.ts freshPgUrl), with the current schema made by the code under test.
import {initSchema} from '../../src/schema/migrations.js'
import {openStore} from '../../src/schema/open.js'
// The name store.ts copies every test database from (not imported: store.ts registers node:test hooks).
const PG_TEMPLATE = 'ductile_template'

const url = process.env.DUCTILE_TEST_PG
if (!url) throw new Error('DUCTILE_TEST_PG is not set')
const admin = openStore(url, {mode: 'write'})
admin.exec(`DROP DATABASE IF EXISTS ${PG_TEMPLATE}`)
admin.exec(`CREATE DATABASE ${PG_TEMPLATE}`)
admin.close()
const u = new URL(url)
u.pathname = `/${PG_TEMPLATE}`
const db = openStore(u.toString(), {mode: 'create'})
initSchema(db)
db.close()
