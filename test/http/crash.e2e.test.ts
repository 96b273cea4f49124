import assert from 'node:assert/strict'
import {createServer} from 'node:net'
import type {AddressInfo} from 'node:net'
import {describe, it} from 'node:test'

import {rows, spawnEngine, startedEngine, waitFor} from '../helpers/engine.js'
import {signBody} from '../../src/lib/auth.js'
import {HOOK_SECRET, TOKENS, TOKEN_VARS, httpTestEnv, ingressYaml} from '../helpers/http.js'

/** 202 means committed: a kill -9 of the engine while requests are in flight loses no accepted job. */

describe('http api: kill -9 mid-request', () => {
  it('every job answered 202 is in the database, and runs once after a restart', async () => {
    const env = httpTestEnv(`${ingressYaml({api: '  rate_limit: false\n'})}plugins:\n  echo-sh: {}\n`)
    const opts = {env: TOKEN_VARS}
    const engine = await startedEngine(env.configPath, [], opts)
    const address = await waitFor('the API to listen', () => /api listening address=(\S+)/.exec(engine.err())?.[1])
    const accepted: string[] = []
    let refused = 0
    let killed = false
    // Eight clients post as fast as they can; the engine is killed while they do.
    const client = async () => {
      for (;;) {
        try {
          const r = await fetch(`http://${address}/plugin/echo-sh/poll`, {method: 'POST', headers: {authorization: `Bearer ${TOKENS.all}`}})
          const body = (await r.json()) as {job_id?: string}
          if (r.status === 202 && body.job_id) accepted.push(body.job_id)
        } catch {
          // The connection died with the engine: an answer never came, so nothing was promised.
          refused++
          if (killed) return
        }
      }
    }
    const clients = Array.from({length: 8}, client)
    await waitFor('200 accepted jobs', () => accepted.length >= 200, 30_000)
    engine.child.kill('SIGKILL')
    killed = true
    await engine.exited
    await Promise.all(clients)
    assert.ok(refused >= 1, 'requests were in flight when it died')
    const stored = new Set(rows(env.db, 'SELECT id FROM job_queue').map((r) => r.id as string))
    const lost = accepted.filter((id) => !stored.has(id))
    assert.deepEqual(lost, [], `${lost.length} of ${accepted.length} accepted jobs lost`)
    // The next engine runs each of them exactly once.
    const again = await startedEngine(env.configPath, [], opts)
    try {
      await waitFor(
        'every accepted job to finish',
        () => rows(env.db, "SELECT COUNT(*) AS n FROM job_queue WHERE status IN ('queued', 'running')")[0]!.n === 0,
        60_000,
      )
      const runs = rows(env.db, 'SELECT job_id, COUNT(*) AS n FROM job_log GROUP BY job_id HAVING n > 1')
      const succeeded = rows(env.db, "SELECT COUNT(*) AS n FROM job_queue WHERE status = 'succeeded'")[0]!.n as number
      assert.ok(succeeded >= accepted.length, `${succeeded} succeeded of ${accepted.length} accepted`)
      // A job interrupted by the kill is attempted again (attempt 2): that is recovery, not a double run.
      for (const r of runs) {
        const attempts = rows(env.db, 'SELECT attempt FROM job_log WHERE job_id = ? ORDER BY attempt', r.job_id).map((x) => x.attempt)
        assert.deepEqual(
          attempts,
          attempts.map((_, i) => i + 1),
          `job ${r.job_id} ran once per attempt`,
        )
      }
    } finally {
      again.child.kill('SIGTERM')
      await again.exited
      env.db.close()
    }
  })

  it('a port in use stops the start with what to do; the built engine takes a signed webhook; SIGTERM closes the listener', async () => {
    const held = createServer()
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r))
    const port = (held.address() as AddressInfo).port
    const env = httpTestEnv(`${ingressYaml().replace('listen: 127.0.0.1:0\n  auth', `listen: 127.0.0.1:${port}\n  auth`)}plugins:\n  echo-sh: {}\n`)
    try {
      const refused = spawnEngine(env.configPath, [], {env: TOKEN_VARS})
      assert.equal(await refused.exited, 1)
      assert.match(refused.err(), new RegExp(`cannot listen for the API on 127\\.0\\.0\\.1:${port}: the address is in use`))
      assert.match(refused.err(), /stop what holds it or change api\.listen/)
      assert.equal(rows(env.db, "SELECT COUNT(*) AS n FROM job_queue WHERE status = 'running'")[0]!.n, 0)
    } finally {
      held.close()
    }
    const engine = await startedEngine(env.configPath, [], {env: TOKEN_VARS})
    const address = await waitFor('the API to listen', () => /api listening address=(\S+)/.exec(engine.err())?.[1])
    assert.equal((await fetch(`http://${address}/healthz`)).status, 200)
    // A signed delivery through the built listeners' thread reaches a real plugin process.
    const hooks = await waitFor('the webhooks to listen', () => /webhooks listening address=(\S+)/.exec(engine.err())?.[1])
    const body = '{"ref": "refs/heads/main"}'
    const delivered = await fetch(`http://${hooks}/webhook/github`, {
      method: 'POST',
      headers: {'content-type': 'application/json', 'x-hub-signature-256': signBody(body, HOOK_SECRET), 'x-github-delivery': 'e2e-1'},
      body,
    })
    assert.equal(delivered.status, 202)
    const {job_id} = (await delivered.json()) as {job_id: string}
    const done = await waitFor(
      'the delivered job to finish',
      () => rows(env.db, "SELECT status, submitted_by FROM job_queue WHERE id = ? AND status NOT IN ('queued', 'running')", job_id)[0],
    )
    assert.deepEqual({...done}, {status: 'succeeded', submitted_by: 'webhook:github'})
    engine.child.kill('SIGTERM')
    assert.equal(await engine.exited, 0)
    await assert.rejects(fetch(`http://${address}/healthz`), 'nothing listens after the stop')
    env.db.close()
  })
})
