import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {describe, it} from 'node:test'

import {ROOT, runCli} from '../helpers/cli.js'
import {freshDb} from '../helpers/db.js'

/** Issue 13.17: a build never leaves a moment without a runnable tree. */
describe('trust: CLI calls during a build', () => {
  it('every call made while scripts/build.js runs succeeds (the new tree is built beside dist/ and swapped in)', {timeout: 120_000}, async () => {
    const {db, path} = freshDb()
    db.close()
    // As `npm test` runs it: not under NODE_ENV=test, which would make oclif write a manifest of the sources.
    const build = spawn(process.execPath, ['scripts/build.js', '--no-typecheck'], {cwd: ROOT, stdio: 'ignore', env: {...process.env, NODE_ENV: ''}})
    const done = new Promise<number | null>((r) => build.on('exit', (code) => r(code)))
    let finished = false
    void done.then(() => (finished = true))
    const failures: string[] = []
    let calls = 0
    // Calls overlap the whole build, and one more starts after it has ended.
    while (!finished || calls === 0) {
      const r = await runCli(['jobs', 'status', '--db', path, '--json'])
      calls++
      if (r.code !== 0) failures.push(r.stderr.slice(0, 1500))
    }
    assert.equal(await done, 0)
    assert.deepEqual(failures, [], `${failures.length} of ${calls} calls failed:\n${failures.join('\n---\n')}`)
  })
})
