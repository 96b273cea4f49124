// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {enqueue, rows, startEngine, testEnv, waitTerminal} from '../helpers/engine.js'

describe('state and facts --at: a plugin as it was at a moment', () => {
  it('the state and the facts as at each fact the real engine wrote; before the first, none; legacy rows flagged', async () => {
    const env = testEnv('plugins:\n  facts-py:\n    config: {label: kitchen}\n')
    const engine = await startEngine(env)
    try {
      for (let i = 0; i < 3; i++) await waitTerminal(env, enqueue(env, 'facts-py'))
    } finally {
      await engine.stop()
    }
    const facts = rows(env.db, 'SELECT id, seq, created_at FROM plugin_facts WHERE plugin_name = ? ORDER BY seq', 'facts-py')
    assert.equal(facts.length, 3)
    const second = facts[1] as {id: string; seq: number; created_at: string}

    const state = await runCli(['state', 'facts-py', '--at', second.created_at, '--db', env.dbPath, '--json'])
    assert.equal(state.code, 0, state.stderr)
    const s = state.json()
    assert.equal(s.state.count, 2, 'the state after the second poll')
    assert.deepEqual([s.fact.id, s.fact.seq, s.approximate], [second.id, second.seq, false])
    const now = await runCli(['state', 'facts-py', '--db', env.dbPath, '--json'])
    assert.equal(now.json().state.count, 3, 'without --at: the current state')

    const listed = await runCli(['facts', 'facts-py', '--at', second.created_at, '--db', env.dbPath, '--json'])
    assert.deepEqual(
      listed.json().facts.map((f: {seq: number}) => f.seq),
      [facts[1]?.seq, facts[0]?.seq],
      'the facts then, newest first',
    )

    const before = await runCli(['state', 'facts-py', '--at', '2001-01-01', '--db', env.dbPath, '--json'])
    assert.equal(before.code, 0)
    assert.deepEqual([before.json().state, before.json().fact], [null, null])
    const human = await runCli(['state', 'facts-py', '--at', '1h', '--db', env.dbPath])
    assert.match(human.stdout, /No fact of plugin facts-py at or before /, 'a duration ago: an hour before these facts existed')

    // A legacy row of the original engine (no seq), the newest by time: flagged as approximately ordered.
    env.db.exec(
      `INSERT INTO plugin_facts (id, seq, plugin_name, fact_type, job_id, command, fact_json, created_at) VALUES ('legacy-1', NULL, 'facts-py', 'facts-py.snapshot', 'old-job', 'poll', '{"count":99}', '2099-01-01 00:00:00.000')`,
    )
    const legacy = await runCli(['state', 'facts-py', '--at', '2099-01-02', '--db', env.dbPath])
    assert.match(legacy.stdout, /a legacy fact without seq: facts of the same time are only approximately ordered/)
  })

  it('a bad --at: exit 2 naming the forms it takes', async () => {
    const env = testEnv()
    const r = await runCli(['facts', 'facts-py', '--at', 'yesterday-ish', '--db', env.dbPath])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /invalid instant "yesterday-ish".*a duration ago such as 2h/)
  })
})
