import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after} from 'node:test'

import type {Db} from '../../src/schema/db.js'
import {freshStore} from './store.js'

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

/**
 * A fresh database with the current schema, and a write handle on it: a file in a temp directory, or on
 * PostgreSQL (DUCTILE_TEST_STORE=postgres, see store.ts) a new database whose URL is `path`.
 */
export function freshDb(): {db: Db; path: string; dir: string} {
  const dir = tempDir()
  return {...freshStore(join(dir, 'ductile.db')), dir}
}
