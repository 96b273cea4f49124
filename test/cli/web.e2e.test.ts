// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {describe, it} from 'node:test'

import {BIN, ROOT, runCli} from '../helpers/cli.js'
import {testEnv} from '../helpers/engine.js'
import {insertJob} from '../helpers/fixtures.js'

/** `ductile web` as operators run it: its own process, its address in one JSON line, a clean stop on SIGTERM. */

describe('ductile web', () => {
  it('serves the pages for --db, says where as one JSON line, and stops with exit 0 on SIGTERM', async () => {
    const env = testEnv()
    const job = insertJob(env.db, {plugin: 'echo-sh', status: 'queued'})
    const child = spawn(process.execPath, [BIN, 'web', '--db', env.dbPath, '--listen', '127.0.0.1:0', '--read-only', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (b) => {
      stderr += b
    })
    try {
      const [line] = (await once(createInterface({input: child.stdout}), 'line')) as [string]
      const started = JSON.parse(line) as {url: string; read_only: boolean; database: string}
      assert.equal(started.read_only, true)
      assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
      assert.doesNotMatch(started.database, /:[^/@:]+@/, 'no password in what it prints')
      const page = await fetch(`${started.url}jobs`)
      assert.equal(page.status, 200)
      assert.ok((await page.text()).includes(job.id), 'the queued job is listed')
    } finally {
      child.kill('SIGTERM')
    }
    const [code] = (await once(child, 'exit')) as [number]
    assert.equal(code, 0, stderr)
  })

  it('refuses a bad --listen with exit 2 and what to give', async () => {
    const env = testEnv()
    const r = await runCli(['web', '--db', env.dbPath, '--listen', 'nowhere', '--json'])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(r.stdout + r.stderr, /--listen nowhere/)
  })
})
