import assert from 'node:assert/strict'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {generate} from '../../bench/generate.js'
import {isFullScan, readWorkloads} from '../../bench/read.js'
import {openDb} from '../../src/schema/db.js'
import {explainPlan} from '../../src/schema/sqlite.js'
import {tempDir} from '../helpers/db.js'

/**
 * Query plans are part of the contract: every operator query searches an index; none
 * reads all of job_log or plugin_facts, or sorts a whole table. Checked on a database with statistics
 * (PRAGMA optimize after a realistic load) and on one without.
 */

const EXPECTED_INDEX: Record<string, RegExp> = {
  'jobs stuck': /job_queue_status_started_at_idx/,
  'jobs slowest': /job_log_succeeded_duration_idx/,
  'jobs slowest --since 1h': /SEARCH job_log USING INDEX job_log_status_completed_idx \(status=\? AND completed_at>\?\)/,
  'jobs errors --plugin': /job_log_failed_plugin_completed_idx \(plugin=\?\)/,
  'jobs inspect': /job_log_job_id_attempt_idx/,
  'breakers history': /circuit_breaker_transitions_plugin_command_created_idx \(plugin=\? AND command=\?\)/,
  facts: /SEARCH plugin_facts USING INDEX plugin_facts_plugin_seq_created_idx \(plugin_name=\?\)/,
  'schedules list': /schedule_entries_status_next_run_idx/,
}

function plans(path: string) {
  const db = openDb(path, {mode: 'read'})
  const out: Record<string, string[]> = {}
  for (const [name, fn] of Object.entries(readWorkloads(db, 'plugin-03'))) {
    const statements: {sql: string; params: readonly unknown[]}[] = []
    db.onQuery = (sql, params) => statements.push({sql, params})
    fn()
    db.onQuery = undefined
    out[name] = statements.flatMap((s) => explainPlan(db, s.sql, s.params))
  }
  db.close()
  return out
}

describe('query plans', () => {
  for (const [label, scale] of [
    ['with statistics', 0.01],
    ['on a nearly empty file', 0.0002],
  ] as const) {
    it(`every read command searches an index (${label})`, () => {
      const path = join(tempDir(), 'plans.db')
      generate(path, {scale})
      const all = plans(path)
      assert.ok(Object.keys(all).length >= 18)
      for (const [name, plan] of Object.entries(all)) {
        assert.equal(isFullScan(plan), false, `${name} reads a whole table: ${plan.join(' | ')}`)
        for (const line of plan) {
          assert.doesNotMatch(line, /^SCAN (job_log|plugin_facts|job_transitions|job_attempts|circuit_breaker_transitions)$/, `${name}: ${line}`)
        }
        if (EXPECTED_INDEX[name]) assert.match(plan.join(' | '), EXPECTED_INDEX[name], `${name}: ${plan.join(' | ')}`)
      }
      assert.doesNotMatch(all.facts.join(' | '), /TEMP B-TREE/, 'facts come in index order, no sort')
      assert.doesNotMatch(all['jobs slowest'].join(' | '), /TEMP B-TREE/, 'the slowest come from the top of the index')
    })
  }
})
