import assert from 'node:assert/strict'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {generate} from '../../bench/generate.js'
import {isFullScan, readWorkloads} from '../../bench/read.js'
import {openDb} from '../../src/schema/db.js'
import {explainPlan} from '../../src/schema/sqlite.js'
import {tempDir} from '../helpers/db.js'
import {referenceQueries, sqlite3Plan} from '../helpers/reference.js'

/**
 * Query plans are part of the contract: every operator query searches an index; none
 * reads all of job_log or plugin_facts, or sorts a whole table. Checked on a database with statistics
 * (PRAGMA optimize after a realistic load) and on one without.
 */

const EXPECTED_INDEX: Record<string, RegExp> = {
  'jobs stuck': /job_queue_status_started_at_idx/,
  'jobs slowest':
    /SEARCH job_log USING INDEX job_log_succeeded_sec_idx \(ANY\(<expr>\) AND completed_at>\?\)|SCAN job_log USING INDEX job_log_succeeded_sec_idx/,
  'jobs slowest --since 1h': /SEARCH job_log USING INDEX job_log_completed_at_idx \(completed_at>\?\)/,
  'jobs errors --plugin': /job_log_failed_plugin_completed_idx \(plugin=\?\)/,
  'jobs inspect': /job_log_job_id_attempt_idx/,
  'facts --at': /SEARCH plugin_facts USING INDEX plugin_facts_plugin_created_at_idx \(plugin_name=\? AND created_at<\?\)/,
  'explain job': /job_log_job_id_attempt_idx/,
  'breakers history': /circuit_breaker_transitions_plugin_command_created_idx \(plugin=\? AND command=\?\)/,
  facts: /SEARCH plugin_facts USING INDEX plugin_facts_reference_order_idx \(plugin_name=\?\)/,
  'jobs errors': /job_log_unsucceeded_status_completed_idx \(status=\?\)/,
  'jobs logs --plugin --status failed': /job_log_failed_plugin_command_idx|job_log_failed_plugin_completed_idx|job_log_unsucceeded_status_completed_idx/,
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

/**
 * The reference's own SQL, verbatim, as the sqlite3 shell an operator pastes it into plans it (Debian's,
 * 3.40: older than the SQLite inside better-sqlite3). Each reads from the index named here; those with an
 * ORDER BY read in its order (no sort of a plugin's facts or of a day's jobs).
 */
const REFERENCE_PLANS: Record<string, {index: RegExp; onNearlyEmpty?: RegExp}> = {
  'Count jobs by status': {index: /SCAN job_queue USING COVERING INDEX job_queue_status_\w+_idx/},
  'Show recent breaker transitions': {
    index: /SEARCH circuit_breaker_transitions USING INDEX circuit_breaker_transitions_plugin_command_created_idx \(plugin=\? AND command=\?\)/,
  },
  'Check for stuck "running" jobs (orphans)': {index: /SEARCH job_queue USING INDEX job_queue_status_started_at_idx \(status=\? AND started_at<\?\)/},
  'Find the slowest successful jobs in the last 24 hours': {index: /SCAN job_log USING INDEX job_log_succeeded_sec_idx/},
  'Get the latest error for a specific plugin': {
    index: /SEARCH job_log USING INDEX job_log_failed_plugin_completed_idx \(plugin=\?\)/,
    // Before its statistics say otherwise, sqlite3 takes the (plugin, command, completed_at) failure index
    // and sorts the plugin's few failures.
    onNearlyEmpty: /SEARCH job_log USING INDEX job_log_failed_plugin_command_idx \(plugin=\?\) \| USE TEMP B-TREE FOR ORDER BY/,
  },
  'Inspect recent append-only plugin facts (the durable record)': {
    index: /SEARCH plugin_facts USING INDEX plugin_facts_reference_order_idx \(plugin_name=\?\)/,
  },
  "Inspect a plugin's compatibility view (latest fact, mirrored)": {
    index: /SEARCH plugin_state USING INDEX sqlite_autoindex_plugin_state_1 \(plugin_name=\?\)/,
  },
  'See upcoming scheduled runs': {index: /SEARCH schedule_entries USING INDEX schedule_entries_status_next_run_idx \(status=\?\)/},
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

    it(`the reference's SQL, verbatim in the sqlite3 shell, reads each answer from an index (${label})`, () => {
      const path = join(tempDir(), 'plans.db')
      generate(path, {scale})
      const queries = referenceQueries()
      for (const [name, sql] of queries) {
        const plan = sqlite3Plan(path, sql)
        assert.equal(isFullScan(plan), false, `${name} reads a whole table: ${plan.join(' | ')}`)
        if (name === 'Identify plugins with active circuit breakers') continue // a scan of one row per plugin and command
        const want = REFERENCE_PLANS[name]
        assert.ok(want, `no expected plan for the reference's "${name}"`)
        if (scale < 0.001 && want.onNearlyEmpty?.test(plan.join(' | '))) continue
        assert.match(plan.join(' | '), want.index, `${name}: ${plan.join(' | ')}`)
        if (/ORDER BY/.test(sql)) assert.doesNotMatch(plan.join(' | '), /TEMP B-TREE/, `${name} sorts: ${plan.join(' | ')}`)
      }
    })
  }
})
