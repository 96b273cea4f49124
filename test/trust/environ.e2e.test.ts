import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {enqueue, rows, startedEngine, testEnv, waitTerminal} from '../helpers/engine.js'

/** Issue 13.11: a plugin reading /proc/<ppid>/environ finds none of the engine's environment in its spawn helper. */
describe("trust: the spawn helper carries no secrets of the engine's environment", () => {
  for (const helper of ['python', 'node']) {
    it(`spawn_helper ${helper}: /proc/<helper>/environ holds nothing of the engine's environment`, {timeout: 60_000}, async () => {
      const env = testEnv('', {service: `  spawn_helper: ${helper}\n`})
      writeFileSync(env.configPath, `${readFileSync(env.configPath, 'utf8')}plugins:\n  behave:\n    retry: {max_attempts: 1}\n`)
      const engine = await startedEngine(env.configPath, [], {env: {DUCTILE_TEST_ENGINE_SECRET: 'engine-env-secret-777'}})
      try {
        const id = enqueue(env, 'behave', {mode: 'parent_env'})
        assert.equal((await waitTerminal(env, id)).status, 'succeeded')
        const out = JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', id)[0].result).result
        if (out.read) {
          assert.ok(!out.environ.includes('engine-env-secret-777'), "the engine's environment reached the helper")
          // It is the helper's environment (a pyenv shim in front of python3 may add its own PYENV_* names).
          assert.match(out.environ, /DUCTILE_SPAWNER=/)
          assert.ok(!/(^|\0)(HOME|NO_COLOR|NODE_ENV)=/.test(out.environ), "the engine's environment reached the helper")
        }
        // Unreadable (a non-dumpable helper, for a plugin that is not root) is as good.
      } finally {
        engine.child.kill('SIGTERM')
        await engine.exited
      }
    })
  }
})
