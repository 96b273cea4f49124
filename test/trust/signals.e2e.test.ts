import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {enqueue, rows, startedEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'

/**
 * Issue 13.5: Ctrl-C (SIGINT to the foreground process group) and systemd's stop (SIGTERM to the group) must
 * drain in-flight jobs, as SIGTERM to the engine's PID does.
 */
describe("trust: signals to the engine's process group drain running jobs", () => {
  for (const [helper, signal] of [
    ['python', 'SIGINT'],
    ['node', 'SIGTERM'],
    ['off', 'SIGINT'],
  ] as const) {
    it(`${signal} to the group, spawn_helper ${helper}: the running job succeeds and the engine exits 0`, {timeout: 60_000}, async () => {
      const env = testEnv('', {service: `  spawn_helper: ${helper}\n`})
      writeFileSync(env.configPath, `${readFileSync(env.configPath, 'utf8')}plugins:\n  behave:\n    retry: {max_attempts: 1}\n`)
      const e = await startedEngine(env.configPath, [], {detached: true})
      const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 1.5})
      try {
        // The plugin is running once its PID is recorded.
        await waitFor(
          'the plugin to start',
          () => rows(env.db, 'SELECT plugin_pid FROM job_attempts WHERE job_id = ? AND plugin_pid IS NOT NULL', id).length > 0,
        )
        process.kill(-e.child.pid!, signal)
        assert.equal(await e.exited, 0, e.err())
      } finally {
        try {
          process.kill(-e.child.pid!, 'SIGKILL')
        } catch {
          // gone
        }
      }
      const job = await waitTerminal(env, id)
      assert.equal(job.status, 'succeeded', `${job.last_error}\n${e.err()}`)
      assert.match(e.err(), /draining running jobs/)
    })
  }
})
