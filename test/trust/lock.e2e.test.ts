import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {enqueue, jobRow, startedEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'

/** Issue 13.4: one engine per database file, by whatever path it is named. */
describe('trust: the engine lock is on the real path', () => {
  it("a second engine through a symlinked file or directory is refused, and the first one's jobs run on", {timeout: 60_000}, async () => {
    const env = testEnv()
    const first = await startedEngine(env.configPath)
    try {
      const id = enqueue(env, 'behave', {mode: 'sleep', seconds: 1})
      await waitFor('the job to run', () => jobRow(env.db, id).status === 'running')
      const viaFile = join(env.dir, 'link.db')
      symlinkSync(env.dbPath, viaFile)
      const viaDir = join(env.dir, 'alias')
      mkdirSync(join(env.dir, 'links'))
      symlinkSync(env.dir, viaDir)
      for (const db of [viaFile, join(viaDir, 'ductile.db'), join(env.dir, 'links', '..', 'ductile.db')]) {
        const second = await runCli(['engine', 'start', '--config', env.configPath, '--db', db])
        assert.equal(second.code, 1, `${db}: ${second.stderr}`)
        assert.match(second.stderr, /another engine \(PID \d+/)
      }
      // The refused engines recovered nothing: the running job finishes normally.
      assert.equal((await waitTerminal(env, id)).status, 'succeeded')
    } finally {
      first.child.kill('SIGTERM')
      assert.equal(await first.exited, 0)
    }
  })
})
