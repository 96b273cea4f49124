import assert from 'node:assert/strict'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {enqueue, spawnEngine, startedEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'

/**
 * Issue 13.1: an engine SIGKILLed the moment its plugin starts (before the plugin's PID can have reached the
 * database) and restarted must never run the job beside the plugin it left behind.
 */
describe('trust: no job runs twice at once after a crash', () => {
  it("50 SIGKILLs at the plugin's first line, through every spawn path: zero overlaps", {timeout: 300_000}, async () => {
    const env = testEnv('', {service: '  max_workers: 1\n  plugin_env_passthrough: [CRASH_DIR]\n'})
    const crash = {env: {CRASH_DIR: env.dir}}
    const trace = join(env.dir, 'runs.log')
    const killSwitch = join(env.dir, 'kill-engine')
    const base = readFileSync(env.configPath, 'utf8')
    const useHelper = (spawnHelper: string) =>
      writeFileSync(
        env.configPath,
        `${base.replace('service:\n', `service:\n  spawn_helper: ${spawnHelper}\n`)}plugins:\n  crash-point:\n    retry: {max_attempts: 100}\n`,
      )
    const id = enqueue(env, 'crash-point', {}, {maxAttempts: 100})
    const lines = () => {
      try {
        return readFileSync(trace, 'utf8').trim().split('\n')
      } catch {
        return []
      }
    }
    writeFileSync(killSwitch, '')
    const trials = 50
    const paths = ['off', 'python', 'node']
    for (let t = 0; t < trials; t++) {
      useHelper(paths[t % paths.length])
      const e = spawnEngine(env.configPath, [], crash)
      const code = await e.exited
      assert.equal(code, null, `trial ${t}: the plugin should have killed the engine:\n${e.err()}`)
      await waitFor(`run ${t + 1} to be recorded`, () => lines().length >= t + 1)
    }
    // A last engine finishes the job; its run too must find no earlier run alive.
    rmSync(killSwitch)
    useHelper('python')
    const last = await startedEngine(env.configPath, [], crash)
    try {
      assert.equal((await waitTerminal(env, id, 60_000)).status, 'succeeded')
    } finally {
      last.child.kill('SIGTERM')
      await last.exited
    }
    const runs = lines()
    assert.equal(runs.length, trials + 1)
    assert.deepEqual(
      runs.filter((l) => !l.endsWith(' alone')),
      [],
      'a run started while an earlier one was still alive',
    )
  })
})
