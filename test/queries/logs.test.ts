// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {searchJobLogs} from '../../src/queries/logs.js'
import {freshDb} from '../helpers/db.js'
import {insertLog} from '../helpers/fixtures.js'

/** job_log search as the web's Jobs page pages through it: by keyset, and free text in bounded windows. */

function seeded() {
  const {db} = freshDb()
  // 30 attempts a second apart, two of them sharing one completed_at (ties break by id); one rare error.
  const ids: string[] = []
  for (let i = 0; i < 30; i++) {
    const at = `2026-12-01 10:00:${String(i).padStart(2, '0')}.000`
    const row = insertLog(db, {
      completed_at: i === 29 ? '2026-12-01 10:00:28.000' : at,
      status: 'failed',
      last_error: i === 4 ? 'certificate expired' : 'HTTP 502',
    })
    ids.push(row.id)
  }
  return {db, ids}
}

describe('searchJobLogs pages', () => {
  it('by keyset: every row once, newest first, ties within one completed_at included', () => {
    const {db, ids} = seeded()
    const seen: string[] = []
    let before: {completedAt: string; id: string} | undefined
    for (;;) {
      const page = searchJobLogs(db, {limit: 7, before})
      seen.push(...page.rows.map((r) => r.id))
      const last = page.rows[page.rows.length - 1]
      if (!page.truncated || !last) break
      before = {completedAt: last.completed_at, id: last.id}
    }
    assert.equal(seen.length, 30)
    assert.equal(new Set(seen).size, 30)
    assert.deepEqual(new Set(seen), new Set(ids))
  })

  it('free text looks at scanLimit rows a page and says where it stopped; going on from there finds an older match', () => {
    const {db} = seeded()
    const first = searchJobLogs(db, {limit: 5, query: 'CERTIFICATE', scanLimit: 10})
    assert.deepEqual(first.rows, [], 'not among the newest ten')
    assert.equal(first.truncated, true)
    assert.ok(first.next, 'where the look stopped')
    let before: {completedAt: string; id: string} | undefined = first.next
    let found: string[] = []
    for (let i = 0; i < 3 && before && found.length === 0; i++) {
      const page = searchJobLogs(db, {limit: 5, query: 'certificate', scanLimit: 10, before})
      found = page.rows.map((r) => r.last_error ?? '')
      before = page.next
    }
    assert.deepEqual(found, ['certificate expired'])
    // A common word fills a page from the first window.
    const common = searchJobLogs(db, {limit: 5, query: 'http 502', scanLimit: 10})
    assert.equal(common.rows.length, 5)
    assert.equal(common.truncated, true)
    assert.equal(common.next, undefined)
  })
})
