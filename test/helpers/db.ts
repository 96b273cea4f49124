import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after} from 'node:test'

import {type Db, openDb} from '../../src/schema/db.js'
import {initSchema} from '../../src/schema/migrations.js'

const dirs: string[] = []
after(() => {
  if (process.env.KEEP_TEST_DIRS) return
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

/** A fresh temporary directory, removed when the test file ends (KEEP_TEST_DIRS=1 keeps it). */
export function tempDir(prefix = 'ductile-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(d)
  return d
}

/** A fresh database file with the current schema, and a write handle on it. */
export function freshDb(): {db: Db; path: string; dir: string} {
  const dir = tempDir()
  const path = join(dir, 'ductile.db')
  const db = openDb(path, {mode: 'create'})
  initSchema(db)
  return {db, path, dir}
}
