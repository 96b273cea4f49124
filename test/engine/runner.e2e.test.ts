import assert from 'node:assert/strict'
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {type PluginRequest, type RunResult, pluginEnv, runPlugin} from '../../src/engine/runner.js'
import {Spawner, spawnPath} from '../../src/engine/spawner.js'
import {findOnPath} from '../../src/lib/which.js'
import {DuctileError} from '../../src/errors.js'
import {processAlive} from '../../src/lib/proc.js'
import {tempDir} from '../helpers/db.js'
import {FIXTURE_PLUGINS, waitFor} from '../helpers/engine.js'

/**
 * The runner on its own, every way it can start a plugin: from this process, through the Node spawn helper
 * and through the Python one. The three must give the same result for the same plugin, byte for byte.
 */

const request = (payload: Record<string, unknown>): PluginRequest => ({
  protocol: 2,
  job_id: 'j1',
  command: 'poll',
  config: {},
  state: {},
  context: {},
  payload,
  deadline_at: '2026-11-28T00:00:00.000Z',
  instance: 'behave',
})
const behave = join(FIXTURE_PLUGINS, 'behave', 'run.py')
const python = findOnPath('python3')
assert.ok(python, 'python3 is on PATH (the fixture plugins need it too)')
const helpers = {node: new Spawner('node'), python: new Spawner('python', {python})}
after(() => {
  for (const s of Object.values(helpers)) s.close()
})
const WAYS = ['this process', 'the Node spawn helper', 'the Python spawn helper'] as const
type Way = (typeof WAYS)[number]
const spawnerFor = (via: Way) => (via === 'the Node spawn helper' ? helpers.node : via === 'the Python spawn helper' ? helpers.python : undefined)

/** Small sh plugins for what behave cannot do: ignore stdin, leave a child holding stdout, die by a signal. */
const scripts = tempDir('ductile-runner-')
const script = (name: string, body: string, mode = 0o755) => {
  const p = join(scripts, name)
  writeFileSync(p, `#!/bin/sh\n${body}\n`)
  chmodSync(p, mode)
  return p
}
const noRead = script('no-read.sh', `echo '{"status":"ok","result":"did not read"}'`)
const leavesChild = script('leaves-child.sh', `cat >/dev/null; sleep 30 & echo "$!" > ${scripts}/child.pid; echo '{"status":"ok","result":"left a child"}'`)
const killsItself = script('kills-itself.sh', `cat >/dev/null; echo partial; kill -KILL $$`)
const notExecutable = script('not-executable.sh', 'exit 0', 0o644)

type RunOpts = {timeoutMs?: number; entrypoint?: string; onSpawn?: (pid: number) => void; payload?: Record<string, unknown>}
const run = (via: Way, payload: Record<string, unknown>, o: RunOpts = {}) =>
  runPlugin({
    entrypoint: o.entrypoint ?? behave,
    request: request(payload),
    env: pluginEnv(process.env, []),
    timeoutMs: o.timeoutMs ?? 10_000,
    graceMs: 300,
    onSpawn: o.onSpawn,
    spawner: spawnerFor(via),
  })

/** What must not depend on who spawned the plugin (not its PID, not how long it took). */
const comparable = ({pid, durationMs, ...rest}: RunResult) => rest

for (const via of WAYS) {
  describe(`runPlugin through ${via}`, () => {
    it('ok: the response, stderr and the pid', async () => {
      let pid = 0
      const r = await run(via, {mode: 'ok'}, {onSpawn: (p) => (pid = p)})
      assert.equal(r.kind, 'ok')
      assert.equal(r.response?.result, 'fine')
      assert.ok(pid > 0)
      assert.equal(r.pid, pid)
    })

    it('a plugin that ignores SIGTERM is timed out and its whole group killed', async () => {
      let pid = 0
      const r = await run(via, {}, {entrypoint: join(FIXTURE_PLUGINS, 'term-ignorer', 'run.sh'), timeoutMs: 300, onSpawn: (p) => (pid = p)})
      assert.equal(r.kind, 'timeout')
      assert.equal(r.error, 'plugin execution timed out after 300ms')
      assert.equal(r.stdout, null)
      assert.equal(processAlive(pid), false)
    })

    it('stdout over the cap fails with the prefix kept; stderr is truncated', async () => {
      const flood = await run(via, {mode: 'flood_stdout'})
      assert.equal(flood.kind, 'output_limit')
      assert.equal(Buffer.byteLength(flood.stdout!), 65_536, 'a bounded head of the output is kept')
      const noisy = await run(via, {mode: 'flood_stderr'})
      assert.equal(noisy.kind, 'ok')
      assert.equal(noisy.stderrTruncated, true)
      assert.equal(Buffer.byteLength(noisy.stderr), 65_536)
    })

    it('exit 78 is never retried; a missing or non-executable entrypoint is a spawn error', async () => {
      const r = await run(via, {mode: 'exit78'})
      assert.deepEqual([r.kind, r.retryable, r.reason, r.exitCode], ['error', false, 'exit_code_78', 78])
      const missing = await run(via, {}, {entrypoint: join(FIXTURE_PLUGINS, 'nope', 'run.sh')})
      assert.equal(missing.kind, 'spawn_error')
      assert.equal(missing.error, `plugin spawn failed: spawn ${join(FIXTURE_PLUGINS, 'nope', 'run.sh')} ENOENT`)
      const denied = await run(via, {}, {entrypoint: notExecutable})
      assert.equal(denied.error, `plugin spawn failed: spawn ${notExecutable} EACCES`)
    })

    it('a child left holding stdout does not hold the run; it is killed with the group', async () => {
      const r = await run(via, {}, {entrypoint: leavesChild})
      assert.deepEqual([r.kind, r.response?.result], ['ok', 'left a child'])
      assert.ok(r.durationMs < 5000, `finished ${r.durationMs} ms after the start, not when the child's sleep ends`)
      const child = Number(readFileSync(join(scripts, 'child.pid'), 'utf8'))
      await waitFor('the child left in the group to be gone', () => !processAlive(child), 2000)
    })
  })
}

describe('every way of spawning gives the same result', () => {
  const cases: [string, Record<string, unknown>, RunOpts?][] = [
    ['ok with state', {mode: 'ok', state: {a: 1}}],
    ['error, retryable', {mode: 'error'}],
    ['retry: false', {mode: 'retry_false'}],
    ['exit 78', {mode: 'exit78'}],
    ['valid JSON and a non-zero exit', {mode: 'nonzero_valid'}],
    ['stdout over the cap', {mode: 'flood_stdout'}],
    ['stderr over the cap', {mode: 'flood_stderr'}],
    ['invalid JSON', {mode: 'invalid_json'}],
    ['empty stdout', {mode: 'empty'}],
    ['missing result', {mode: 'missing_result'}],
    ['binary garbage on stdout', {mode: 'binary'}],
    ['invalid UTF-8 on stderr', {mode: 'bad_utf8_stderr'}],
    ['two JSON documents', {mode: 'two_docs'}],
    ['a JSON array', {mode: 'array'}],
    ['the environment it got', {mode: 'env'}],
    ['the request it read', {mode: 'echo_request', text: 'ünïcödé ✓ \u{1F600}'}],
    ['a 4 MiB request the plugin does not read', {big: 'z'.repeat(4 << 20)}, {entrypoint: noRead}],
    ['killed by a signal after some output', {}, {entrypoint: killsItself}],
    ['a 12 MiB request read whole', {mode: 'echo_request', big: 'q'.repeat(12 << 20)}],
  ]
  for (const [name, payload, o] of cases) {
    it(name, async () => {
      const [here, node, py] = await Promise.all(WAYS.map((via) => run(via, payload, o)))
      assert.deepEqual(comparable(node), comparable(here), 'the Node helper agrees with the engine')
      assert.deepEqual(comparable(py), comparable(here), 'the Python helper agrees with the engine')
    })
  }

  it('the outcomes are the ones the engine classifies (not three equal failures)', async () => {
    const r = await run('the Python spawn helper', {}, {entrypoint: killsItself})
    assert.deepEqual([r.kind, r.signal, r.exitCode, r.stdout], ['invalid_response', 'SIGKILL', null, 'partial\n'])
    const big = await run('the Python spawn helper', {mode: 'echo_request', big: 'q'.repeat(12 << 20)})
    assert.equal(big.kind, 'output_limit', 'a 12 MiB echo is over the stdout cap')
    const env = await run('the Python spawn helper', {mode: 'env'})
    const seen = (env.response?.result as {env: Record<string, string>} | undefined)?.env ?? {}
    assert.deepEqual(
      Object.keys(seen).filter((k) => k.startsWith('NODE_')),
      [],
      'no IPC channel variables reach plugins',
    )
  })
})

describe('choosing the spawn helper', () => {
  const noPython = tempDir('ductile-path-')
  it('auto: Python where python3 is on PATH; without it the Node helper from 2 workers, the engine itself at 1', () => {
    assert.deepEqual(spawnPath('auto', 1), {kind: 'python', python})
    assert.deepEqual(spawnPath('auto', 1, noPython), {kind: null})
    assert.deepEqual(spawnPath('auto', 2, noPython), {kind: 'node'})
    assert.deepEqual(spawnPath('node', 1), {kind: 'node'})
    assert.deepEqual(spawnPath('off', 4), {kind: null})
  })

  it('python without python3 is a config error naming the fix', () => {
    assert.throws(
      () => spawnPath('python', 2, noPython),
      (e: unknown) =>
        e instanceof DuctileError && e.exitCode === 2 && /python3 is not on the PATH/.test(e.message) && /spawn_helper to auto or node/.test(e.hint ?? ''),
    )
  })

  it('a Python helper that cannot start hands over to the Node helper, and the run still happens', async () => {
    for (const broken of ['/nonexistent/python3', '/bin/false']) {
      const why: string[] = []
      const s = new Spawner('python', {python: broken, onFallback: (w) => why.push(w)})
      try {
        const r = await runPlugin({entrypoint: behave, request: request({mode: 'ok'}), env: pluginEnv(process.env, []), timeoutMs: 10_000, spawner: s})
        assert.equal(r.kind, 'ok', broken)
        assert.equal(s.kind, 'node')
        assert.equal(why.length, 1)
        assert.match(why[0], /the Python spawn helper did not start .*; plugins are started by the Node helper/)
      } finally {
        s.close()
      }
    }
  })
})
