// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {describe, it} from 'node:test'

import {BIN, ROOT, runCli} from '../helpers/cli.js'
import {rows, testEnv} from '../helpers/engine.js'
import {insertJob} from '../helpers/fixtures.js'
import {TOKENS, TOKEN_VARS, httpTestEnv, ingressYaml} from '../helpers/http.js'

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

  it('takes an action as the real command: signed in with a token from the config, a retry is written to the database', async () => {
    const env = httpTestEnv(`${ingressYaml()}plugins:\n  echo-sh: {}\n`)
    const failed = insertJob(env.db, {plugin: 'echo-sh', status: 'failed', completed_at: '2026-12-01 00:00:00.000'})
    const child = spawn(process.execPath, [BIN, 'web', '--config', env.configPath, '--listen', '127.0.0.1:0', '--json'], {
      cwd: ROOT,
      env: {...process.env, ...TOKEN_VARS},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (b) => {
      stderr += b
    })
    try {
      const [line] = (await once(createInterface({input: child.stdout}), 'line')) as [string]
      const url = (JSON.parse(line) as {url: string}).url
      const login = await fetch(`${url}login`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: `token=${TOKENS.all}`,
        redirect: 'manual',
      })
      assert.equal(login.status, 303, stderr)
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
      const page = await (await fetch(`${url}jobs/${failed.id}`, {headers: {cookie}})).text()
      const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? ''
      const retry = await fetch(`${url}jobs/${failed.id}/retry`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded', cookie},
        body: `_csrf=${encodeURIComponent(csrf)}`,
        redirect: 'manual',
      })
      assert.equal(retry.status, 303, stderr)
      assert.deepEqual(
        rows(env.db, 'SELECT status, submitted_by FROM job_queue WHERE parent_job_id = ?', failed.id).map((r) => [r.status, r.submitted_by]),
        [['queued', 'web']],
      )
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
