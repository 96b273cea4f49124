// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {request} from 'node:http'
import {after, before, describe, it} from 'node:test'

import {signBody} from '../../src/lib/auth.js'
import {runCli} from '../helpers/cli.js'
import {rows, waitTerminal} from '../helpers/engine.js'
import {HOOK_SECRET, type HttpEnv, call, ingressYaml, startHttpEnv} from '../helpers/http.js'

/** Signed webhooks against a real engine: good, prefixed, bad, missing, oversized and replayed deliveries. */

const count = (h: HttpEnv) => rows(h.env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0]!.n as number

describe('webhooks: HMAC-signed deliveries enqueue one job each', () => {
  let h: HttpEnv
  before(async () => {
    h = await startHttpEnv(`${ingressYaml()}plugins:\n  echo-sh: {}\n`)
  })
  after(() => h.close())

  const url = () => `${h.hooks}/webhook/github`
  const deliver = (body: string, headers: Record<string, string>) => call(url(), {body, headers: {'content-type': 'application/json', ...headers}})

  it('a GitHub delivery (X-Hub-Signature-256: sha256=…) enqueues a job carrying the body and the delivery headers', async () => {
    const body = JSON.stringify({ref: 'refs/heads/main', commits: [{id: 'abc'}]})
    const r = await deliver(body, {'x-hub-signature-256': signBody(body, HOOK_SECRET), 'x-github-event': 'push', 'x-github-delivery': 'd-1'})
    assert.equal(r.status, 202, r.text)
    assert.equal(r.body.status, 'queued')
    const job = await waitTerminal(h.env, r.body.job_id)
    assert.equal(job.status, 'succeeded')
    assert.equal(job.submitted_by, 'webhook:github')
    const envelope = JSON.parse(job.payload)
    assert.equal(envelope.type, 'webhook.trigger')
    assert.deepEqual(envelope.payload, JSON.parse(body))
    assert.equal(envelope.webhook.event, 'push')
    assert.equal(envelope.webhook.delivery, 'd-1')
    assert.equal(envelope.webhook.headers['x-github-event'], 'push')
    assert.ok(!JSON.stringify(envelope).includes('sha256='), 'the signature is not passed on')
    const why = await runCli(['explain', 'job', r.body.job_id, '--db', h.env.dbPath, '--json'])
    assert.equal(why.code, 0, why.stderr)
    assert.ok(why.json().events.some((e: {text: string}) => e.text === 'enqueued by a signed delivery to webhook github'))
  })

  it('accepts a bare hex signature too', async () => {
    const body = '{"n": 2}'
    const r = await deliver(body, {'x-hub-signature-256': signBody(body, HOOK_SECRET).slice('sha256='.length)})
    assert.equal(r.status, 202, r.text)
  })

  it('refuses a bad, foreign or missing signature with 401 and enqueues nothing', async () => {
    const body = '{"n": 3}'
    const before = count(h)
    const cases: [Record<string, string>, string][] = [
      [{}, 'signature_missing'],
      [{'x-hub-signature-256': 'sha256=deadbeef'}, 'signature_invalid'],
      [{'x-hub-signature-256': signBody(body, 'another-secret-0123456789')}, 'signature_invalid'],
      [{'x-hub-signature-256': signBody('{"n": 4}', HOOK_SECRET)}, 'signature_invalid'],
    ]
    for (const [headers, code] of cases) {
      const r = await deliver(body, headers)
      assert.equal(r.status, 401, r.text)
      assert.equal(r.body.error.code, code)
    }
    assert.equal(count(h), before)
  })

  it('the same delivery id twice is one job; another id is another job', async () => {
    const body = '{"n": 5}'
    const sig = signBody(body, HOOK_SECRET)
    const first = await deliver(body, {'x-hub-signature-256': sig, 'x-github-delivery': 'replayed'})
    assert.equal(first.status, 202)
    const again = await deliver(body, {'x-hub-signature-256': sig, 'x-github-delivery': 'replayed'})
    assert.equal(again.status, 200, again.text)
    assert.equal(again.body.status, 'duplicate')
    assert.equal(again.body.job_id, first.body.job_id)
    await waitTerminal(h.env, first.body.job_id)
    const later = await deliver(body, {'x-hub-signature-256': sig, 'x-github-delivery': 'replayed'})
    assert.equal(later.body.job_id, first.body.job_id, 'still one job after it succeeded')
    const other = await deliver(body, {'x-hub-signature-256': sig, 'x-github-delivery': 'another'})
    assert.equal(other.status, 202)
    assert.notEqual(other.body.job_id, first.body.job_id)
    assert.equal(rows(h.env.db, "SELECT COUNT(*) AS n FROM dedupe_hits WHERE dedupe_key = 'webhook:github:replayed'")[0]!.n, 2)
  })

  it('a body over max_body_size is 413 as soon as its Content-Length is read, not after', async () => {
    const before = count(h)
    const {hostname, port} = new URL(url())
    // Announce 10 MB, send 16 bytes, and wait: the answer comes without the rest of the body.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        hostname,
        port,
        path: '/webhook/github',
        method: 'POST',
        headers: {'content-type': 'application/json', 'content-length': 10_000_000},
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
        req.destroy()
      })
      req.on('error', reject)
      req.write('{"padding": "xxx')
    })
    assert.equal(status, 413)
    const big = JSON.stringify({blob: 'x'.repeat(5000)})
    const r = await deliver(big, {'x-hub-signature-256': signBody(big, HOOK_SECRET)})
    assert.equal(r.status, 413)
    assert.equal(r.body.error.code, 'payload_too_large')
    assert.equal(count(h), before)
  })

  it('unknown paths are 404; the listener has its own /healthz', async () => {
    assert.equal((await call(`${h.hooks}/webhook/nope`, {body: '{}'})).status, 404)
    assert.equal((await call(`${h.hooks}/healthz`)).body.endpoints, 1)
  })
})
