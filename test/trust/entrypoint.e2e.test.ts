import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {enqueue, startEngine, testEnv, waitTerminal} from '../helpers/engine.js'
import {tempDir} from '../helpers/db.js'

/** Issue 13.10: the entrypoint is checked before every spawn, not only at start. */
describe('trust: a plugin swapped while the engine runs', () => {
  it('an entrypoint replaced by a symlink to a script outside the plugin directory is refused at the next spawn', {timeout: 30_000}, async () => {
    const root = tempDir('ductile-plugins-')
    const dir = join(root, 'swap-me')
    mkdirSync(dir)
    writeFileSync(
      join(dir, 'manifest.yaml'),
      'manifest_spec: ductile.plugin\nmanifest_version: 1\nname: swap-me\nversion: 1.0.0\nprotocol: 2\nentrypoint: run.sh\ncommands:\n  - {name: poll, type: read}\n',
    )
    const script = (text: string, path: string) => {
      writeFileSync(path, `#!/bin/sh\ncat > /dev/null\necho '{"status": "ok", "result": "${text}"}'\n`)
      chmodSync(path, 0o755)
    }
    script('inside', join(dir, 'run.sh'))
    const outside = join(tempDir('ductile-outside-'), 'evil.sh')
    script('outside ran', outside)
    const env = testEnv('plugins:\n  swap-me:\n    retry: {max_attempts: 1}\n')
    writeFileSync(
      env.configPath,
      `service:\n  max_workers: 1\n  tick_interval: 1h\nstate:\n  path: ./ductile.db\nplugin_roots:\n  - ${root}\nplugins:\n  swap-me:\n    retry: {max_attempts: 1}\n`,
    )
    const engine = await startEngine(env)
    try {
      const first = enqueue(env, 'swap-me')
      assert.equal((await waitTerminal(env, first)).status, 'succeeded')
      // Swap the entrypoint for a link leading outside, atomically, while the engine runs.
      symlinkSync(outside, join(dir, 'run.sh.new'))
      renameSync(join(dir, 'run.sh.new'), join(dir, 'run.sh'))
      const second = enqueue(env, 'swap-me')
      const job = await waitTerminal(env, second)
      assert.equal(job.status, 'failed')
      assert.match(job.last_error, /refused to run plugin swap-me: .*run\.sh is a symlink/)
      const result = env.db.query('SELECT result FROM job_log WHERE job_id = ?', [second])[0] as {result: string | null}
      assert.ok(!String(result.result).includes('outside ran'), 'the outside script ran')
    } finally {
      await engine.stop()
    }
  })
})
