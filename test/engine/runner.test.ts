import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {type PluginRequest, pluginEnv, runPlugin} from '../../src/engine/runner.js'
import {Spawner} from '../../src/engine/spawner.js'
import {processAlive} from '../../src/lib/proc.js'
import {FIXTURE_PLUGINS} from '../helpers/engine.js'

/** The runner on its own, both ways it can start a plugin: from this process and through the spawn helper. */

const request = (payload: Record<string, unknown>): PluginRequest => ({protocol: 2, job_id: 'j1', command: 'poll', config: {}, state: {}, context: {}, payload, deadline_at: new Date().toISOString(), instance: 'behave'})
const behave = join(FIXTURE_PLUGINS, 'behave', 'run.py')
const spawner = new Spawner()
after(() => spawner.close())

for (const via of ['this process', 'the spawn helper'] as const) {
  describe(`runPlugin through ${via}`, () => {
    const run = (payload: Record<string, unknown>, o: {timeoutMs?: number; entrypoint?: string; onSpawn?: (pid: number) => void} = {}) =>
      runPlugin({
        entrypoint: o.entrypoint ?? behave,
        request: request(payload),
        env: pluginEnv(process.env, []),
        timeoutMs: o.timeoutMs ?? 10_000,
        graceMs: 300,
        onSpawn: o.onSpawn,
        spawner: via === 'the spawn helper' ? spawner : undefined,
      })

    it('ok: the response, stderr and the pid', async () => {
      let pid = 0
      const r = await run({mode: 'ok'}, {onSpawn: (p) => (pid = p)})
      assert.equal(r.kind, 'ok')
      assert.equal(r.response?.result, 'fine')
      assert.ok(pid > 0)
      assert.equal(r.pid, pid)
    })

    it('a plugin that ignores SIGTERM is timed out and its whole group killed', async () => {
      let pid = 0
      const r = await run({}, {entrypoint: join(FIXTURE_PLUGINS, 'term-ignorer', 'run.sh'), timeoutMs: 300, onSpawn: (p) => (pid = p)})
      assert.equal(r.kind, 'timeout')
      assert.equal(r.error, 'plugin execution timed out after 300ms')
      assert.equal(r.stdout, null)
      assert.equal(processAlive(pid), false)
    })

    it('stdout over the cap fails with the prefix kept; stderr is truncated', async () => {
      const flood = await run({mode: 'flood_stdout'})
      assert.equal(flood.kind, 'output_limit')
      assert.equal(Buffer.byteLength(flood.stdout!), 10 * 1024 * 1024)
      const noisy = await run({mode: 'flood_stderr'})
      assert.equal(noisy.kind, 'ok')
      assert.equal(noisy.stderrTruncated, true)
      assert.equal(Buffer.byteLength(noisy.stderr), 65_536)
    })

    it('exit 78 is never retried; a missing entrypoint is a spawn error', async () => {
      const r = await run({mode: 'exit78'})
      assert.deepEqual([r.kind, r.retryable, r.reason, r.exitCode], ['error', false, 'exit_code_78', 78])
      const missing = await run({}, {entrypoint: join(FIXTURE_PLUGINS, 'nope', 'run.sh')})
      assert.equal(missing.kind, 'spawn_error')
      assert.match(missing.error!, /^plugin spawn failed: .*ENOENT/)
    })
  })
}
