import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {startEngine, testEnv} from '../helpers/engine.js'

describe('config history and config diff, from the snapshots the real engine took', () => {
  it('two starts with a changed config: history counts the keys, diff names them, no secret is shown', async () => {
    const env = testEnv('plugins:\n  notify:\n    config: {webhook_token: first-Secret-Value-1, channel: ops}\n')
    await (await startEngine(env)).stop()
    writeFileSync(
      env.configPath,
      readFileSync(env.configPath, 'utf8')
        .replace('max_workers: 2', 'max_workers: 1')
        .replace('first-Secret-Value-1, channel: ops', 'second-Secret-Value-2, channel: alerts'),
    )
    await (await startEngine(env)).stop()

    const history = await runCli(['config', 'history', '--db', env.dbPath, '--json'])
    assert.equal(history.code, 0, history.stderr)
    const snaps = history.json().snapshots as {id: string; reason: string; changed_keys: number | null}[]
    assert.equal(snaps.length, 2)
    assert.deepEqual(
      snaps.map((s) => [s.reason, s.changed_keys]),
      [
        ['startup', 2],
        ['startup', null],
      ],
    )

    const diff = await runCli(['config', 'diff', '--db', env.dbPath, '--json'])
    assert.equal(diff.code, 0, diff.stderr)
    const d = diff.json()
    assert.equal(d.from.id, snaps[1]?.id)
    assert.equal(d.to.id, snaps[0]?.id)
    assert.deepEqual(d.changes, [
      {path: 'plugins.notify.config.channel', change: 'changed', before: 'ops', after: 'alerts'},
      {path: 'service.max_workers', change: 'changed', before: 2, after: 1},
    ])
    const human = await runCli(['config', 'diff', snaps[1]?.id ?? '', snaps[0]?.id ?? '', '--db', env.dbPath])
    assert.match(human.stdout, /~ service\.max_workers: 2 → 1/)
    for (const out of [history.stdout, diff.stdout, human.stdout]) assert.doesNotMatch(out, /Secret-Value/)
  })

  it('fewer than two snapshots, or an unknown id: exit 1 with what to do', async () => {
    const env = testEnv()
    const none = await runCli(['config', 'diff', '--db', env.dbPath])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /fewer than two config snapshots/)
    await (await startEngine(env)).stop()
    const unknown = await runCli(['config', 'diff', 'cfg_nope', '--db', env.dbPath])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no config snapshot cfg_nope/)
    assert.match(unknown.stderr, /config history/)
  })
})
