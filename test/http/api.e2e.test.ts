// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {rows, waitFor, waitTerminal} from '../helpers/engine.js'
import {type HttpEnv, TOKENS, call, ingressYaml, startHttpEnv} from '../helpers/http.js'

/** The HTTP API against a real engine on a free port: every endpoint, its failures, auth and scopes. */

const PIPELINES = `pipelines:
  - name: flow
    on: flow.start
    execution_mode: synchronous
    steps:
      - {id: a, uses: echo-sh}
      - {id: b, uses: echo-sh}
  - name: later
    on: later.start
    steps:
      - {id: only, uses: echo-sh}
  - name: slow
    on: slow.start
    execution_mode: synchronous
    timeout: 300ms
    steps:
      - {id: wait, uses: behave}
  - name: gate
    on: gate.start
    execution_mode: synchronous
    steps:
      - {id: wait, uses: behave}
`
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const count = (h: HttpEnv) => rows(h.env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0]!.n as number

describe('http api: endpoints, errors, auth and scopes', () => {
  let h: HttpEnv
  before(async () => {
    h = await startHttpEnv(
      `${ingressYaml({api: '  max_body_size: 2KB\n  max_concurrent_sync: 1\n  rate_limit: {requests: 1000, per: 1s}\n'})}plugins:\n  echo-sh: {}\n  behave: {retry: {max_attempts: 1}}\n${PIPELINES}`,
    )
  })
  after(() => h.close())

  it('serves /healthz, / and /plugins without a token', async () => {
    const health = await call(`${h.api}/healthz`)
    assert.equal(health.status, 200)
    assert.equal(health.body.status, 'ok')
    assert.equal(typeof health.body.queue_depth, 'number')
    assert.equal(health.body.version, 'test')
    assert.equal((await call(`${h.api}/`)).body.discovery.health, '/healthz')
    const plugins = await call(`${h.api}/plugins`)
    const listed = plugins.body.plugins.map((p: {name: string; commands: string[]}) => [p.name, p.commands])
    assert.deepEqual(
      listed.filter(([name]: [string]) => name === 'behave' || name === 'echo-sh'),
      [
        ['behave', ['poll', 'handle', 'sync']],
        ['echo-sh', ['poll', 'handle']],
      ],
    )
    assert.equal(health.body.plugins_loaded, listed.length)
  })

  it('POST /plugin/{p}/{c} enqueues through the CLI path, wakes the worker, and the job runs', async () => {
    const r = await call(`${h.api}/plugin/echo-sh/handle`, {token: TOKENS.pluginRw, json: {payload: {hello: 'world'}}})
    assert.equal(r.status, 202, r.text)
    assert.deepEqual({...r.body, job_id: undefined}, {job_id: undefined, status: 'queued', plugin: 'echo-sh', command: 'handle'})
    const job = await waitTerminal(h.env, r.body.job_id)
    assert.equal(job.status, 'succeeded')
    assert.equal(job.submitted_by, 'api')
    const envelope = JSON.parse(job.payload)
    assert.equal(envelope.type, 'api.trigger')
    assert.equal(envelope.source, 'api')
    assert.deepEqual(envelope.payload, {hello: 'world'})
    // A read command with no body: plugin:ro suffices, the payload is {}.
    const read = await call(`${h.api}/plugin/echo-sh/poll`, {token: TOKENS.pluginRo, method: 'POST'})
    assert.equal(read.status, 202, read.text)
    assert.equal((await waitTerminal(h.env, read.body.job_id)).payload, '{}')
  })

  it('refuses bad triggers with one error shape and enqueues nothing', async () => {
    const before = count(h)
    const cases: [string, Parameters<typeof call>[1], number, string][] = [
      ['/plugin/nope/poll', {token: TOKENS.all, json: {}}, 404, 'not_found'],
      ['/plugin/echo-sh/nope', {token: TOKENS.all, json: {}}, 404, 'not_found'],
      ['/plugin/echo-sh/poll', {token: TOKENS.all, json: {payload: [1, 2]}}, 400, 'validation'],
      ['/plugin/echo-sh/poll', {token: TOKENS.all, json: {payload: 'text'}}, 400, 'validation'],
      ['/plugin/echo-sh/poll', {token: TOKENS.all, json: [1]}, 400, 'validation'],
      ['/plugin/echo-sh/poll', {token: TOKENS.all, body: '{"payload": {', headers: {'content-type': 'application/json'}}, 400, 'validation'],
      ['/plugin/echo-sh/poll', {token: TOKENS.all, json: {payload: {blob: 'x'.repeat(4096)}}}, 413, 'payload_too_large'],
      ['/plugin/echo-sh/poll', {token: TOKENS.all, body: 'a=b', headers: {'content-type': 'application/x-www-form-urlencoded'}}, 415, 'unsupported_media_type'],
      ['/pipeline/nope', {token: TOKENS.all, json: {}}, 404, 'not_found'],
      ['/no/such/endpoint', {token: TOKENS.all, json: {}}, 404, 'not_found'],
    ]
    for (const [path, o, status, code] of cases) {
      const r = await call(`${h.api}${path}`, o)
      assert.equal(r.status, status, `${path}: ${r.text}`)
      assert.equal(r.body.error.code, code, path)
      assert.equal(typeof r.body.error.message, 'string', path)
      assert.doesNotMatch(r.text, /at .+\.(ts|js):\d+/, `${path}: no stack trace`)
    }
    assert.equal(count(h), before, 'nothing enqueued')
  })

  it('checks tokens and scopes on every endpoint: 401 without or with a wrong token, 403 without the scope', async () => {
    const {body: queued} = await call(`${h.api}/plugin/echo-sh/poll`, {token: TOKENS.all, method: 'POST'})
    const id = queued.job_id
    // endpoint → the tokens that pass; every other token gets 403, none or a wrong one 401.
    const matrix: {method: string; path: string; json?: unknown; ok: (keyof typeof TOKENS)[]}[] = [
      {method: 'GET', path: '/plugin/echo-sh', ok: ['all', 'pluginRo', 'pluginRw', 'slow']},
      {method: 'POST', path: '/plugin/echo-sh/poll', ok: ['all', 'pluginRo', 'pluginRw', 'slow']},
      {method: 'POST', path: '/plugin/echo-sh/handle', json: {}, ok: ['all', 'pluginRw', 'slow']},
      {method: 'POST', path: '/pipeline/later', json: {}, ok: ['all', 'pluginRw', 'slow']},
      {method: 'GET', path: `/job/${id}`, ok: ['all', 'jobsRo', 'slow']},
      {method: 'GET', path: `/job/${id}/tree`, ok: ['all', 'jobsRo', 'slow']},
      {method: 'GET', path: '/jobs', ok: ['all', 'jobsRo', 'slow']},
      {method: 'GET', path: '/job-logs', ok: ['all', 'jobsRo', 'slow']},
    ]
    for (const m of matrix) {
      const url = `${h.api}${m.path}`
      const send = (token?: string) => call(url, {method: m.method, token, json: m.json, body: m.method === 'POST' && m.json === undefined ? '' : undefined})
      const none = await send()
      assert.equal(none.status, 401, `${m.path} without a token`)
      assert.equal(none.body.error.code, 'unauthorized')
      assert.equal((await send('not-a-token-at-all-xxxxxxxx')).status, 401, `${m.path} with a wrong token`)
      for (const [name, token] of Object.entries(TOKENS) as [keyof typeof TOKENS, string][]) {
        const r = await send(token)
        if (m.ok.includes(name)) assert.ok(r.status < 300, `${m.method} ${m.path} with ${name}: ${r.status} ${r.text}`)
        else {
          assert.equal(r.status, 403, `${m.method} ${m.path} with ${name}: ${r.text}`)
          assert.equal(r.body.error.code, 'forbidden')
        }
      }
    }
    // Events: only events:ro (and *); the stream is read in events.e2e.test.ts.
    assert.equal((await call(`${h.api}/events`, {token: TOKENS.jobsRo})).status, 403)
    assert.equal((await call(`${h.api}/events`)).status, 401)
    // An unauthenticated caller learns nothing of the plugins: 401 before 404.
    assert.equal((await call(`${h.api}/plugin/nope/poll`, {method: 'POST'})).status, 401)
  })

  it('GET /job and /jobs answer in the original wire format, times in RFC 3339', async () => {
    const {body} = await call(`${h.api}/plugin/echo-sh/poll`, {token: TOKENS.all, method: 'POST'})
    await waitTerminal(h.env, body.job_id)
    const job = await call(`${h.api}/job/${body.job_id}`, {token: TOKENS.jobsRo})
    assert.equal(job.status, 200)
    assert.equal(job.body.job_id, body.job_id)
    assert.equal(job.body.status, 'succeeded')
    assert.equal(job.body.submitted_by, 'api')
    for (const k of ['created_at', 'started_at', 'completed_at']) assert.match(job.body[k], RFC3339, k)
    assert.deepEqual(job.body.result, {status: 'ok', result: 'echoed'})
    assert.equal((await call(`${h.api}/job/no-such-job`, {token: TOKENS.jobsRo})).status, 404)
    const list = await call(`${h.api}/jobs?plugin=echo-sh&status=ok&limit=2`, {token: TOKENS.jobsRo})
    assert.equal(list.status, 200)
    assert.equal(list.body.jobs.length, 2)
    for (const j of list.body.jobs) assert.equal(j.status, 'succeeded')
    assert.ok(list.body.jobs[0].created_at >= list.body.jobs[1].created_at, 'newest first')
    assert.equal((await call(`${h.api}/jobs?status=bogus`, {token: TOKENS.jobsRo})).body.error.code, 'validation')
    assert.equal((await call(`${h.api}/jobs?limit=0`, {token: TOKENS.jobsRo})).status, 400)
    const twice = await call(`${h.api}/jobs?plugin=a&plugin=b`, {token: TOKENS.jobsRo})
    assert.equal(twice.status, 400, 'a parameter given twice is refused, not half-read')
    assert.match(twice.body.error.message, /give plugin once/)
  })

  it('GET /job-logs filters as the original does, with limit ≤ 200', async () => {
    const {body} = await call(`${h.api}/plugin/behave/handle`, {token: TOKENS.all, json: {payload: {mode: 'error'}}})
    await waitTerminal(h.env, body.job_id)
    const logs = await call(`${h.api}/job-logs?plugin=behave&status=failed&submitted_by=api&query=upstream&include_result=true`, {token: TOKENS.jobsRo})
    assert.equal(logs.status, 200, logs.text)
    const mine = logs.body.logs.find((l: {job_id: string}) => l.job_id === body.job_id)
    assert.ok(mine, 'the failed attempt is found by its error text')
    assert.equal(mine.last_error, 'upstream said no')
    assert.match(mine.stderr, /upstream said no/)
    assert.match(mine.completed_at, RFC3339)
    assert.deepEqual(mine.result, {status: 'error', error: 'upstream said no'})
    const byId = await call(`${h.api}/job-logs?job_id=${body.job_id}`, {token: TOKENS.jobsRo})
    assert.equal(byId.body.logs.length, 1)
    assert.equal(byId.body.logs[0].result, undefined, 'results only with include_result=true')
    assert.equal((await call(`${h.api}/job-logs?limit=201`, {token: TOKENS.jobsRo})).status, 400)
    assert.equal((await call(`${h.api}/job-logs?from=yesterday`, {token: TOKENS.jobsRo})).status, 400)
    const future = await call(`${h.api}/job-logs?from=2999-01-01T00:00:00Z`, {token: TOKENS.jobsRo})
    assert.deepEqual(future.body.logs, [])
  })

  it('POST /pipeline: 202 with the root job, or synchronous: 200 with the whole tree', async () => {
    const async = await call(`${h.api}/pipeline/later`, {token: TOKENS.pluginRw, json: {payload: {n: 1}}})
    assert.equal(async.status, 202, async.text)
    assert.equal(async.body.command, 'later')
    assert.equal((await waitTerminal(h.env, async.body.job_id)).submitted_by, 'api')
    const sync = await call(`${h.api}/pipeline/flow`, {token: TOKENS.pluginRw, json: {payload: {n: 2}}})
    assert.equal(sync.status, 200, sync.text)
    assert.equal(sync.body.status, 'succeeded')
    assert.equal(sync.body.tree.length, 2, 'both steps, the second a child of the first')
    assert.equal(sync.body.tree[1].parent_job_id, sync.body.tree[0].job_id)
    assert.deepEqual(sync.body.result, {status: 'ok', result: 'echoed'})
    const tree = await call(`${h.api}/job/${sync.body.job_id}/tree`, {token: TOKENS.jobsRo})
    assert.deepEqual(
      tree.body.map((j: {job_id: string}) => j.job_id),
      sync.body.tree.map((j: {job_id: string}) => j.job_id),
    )
    // ?async=true answers at once even for a synchronous pipeline.
    const forced = await call(`${h.api}/pipeline/flow?async=true`, {token: TOKENS.pluginRw, json: {}})
    assert.equal(forced.status, 202)
    await waitTerminal(h.env, forced.body.job_id)
  })

  it('a synchronous call past its timeout is 202 with timeout_exceeded; past max_concurrent_sync, 429', async () => {
    const file = join(h.env.dir, 'release')
    const slow = await call(`${h.api}/pipeline/slow`, {token: TOKENS.all, json: {payload: {mode: 'wait_file', file}}})
    assert.equal(slow.status, 202, slow.text)
    assert.equal(slow.body.timeout_exceeded, true)
    assert.equal(slow.body.status, 'running')
    // One synchronous call waiting (max_concurrent_sync: 1): the next is refused, not queued behind it.
    const gate = call(`${h.api}/pipeline/gate`, {token: TOKENS.all, json: {payload: {mode: 'wait_file', file}}})
    await waitFor('the gate job to run', () => rows(h.env.db, "SELECT 1 FROM job_queue WHERE status = 'running' AND payload LIKE '%gate.start%'").length)
    const refused = await call(`${h.api}/pipeline/gate`, {token: TOKENS.all, json: {payload: {mode: 'ok'}}})
    assert.equal(refused.status, 429, refused.text)
    assert.equal(refused.body.error.code, 'too_many_sync')
    writeFileSync(file, '')
    const done = await gate
    assert.equal(done.status, 200, done.text)
    assert.equal(done.body.status, 'succeeded')
    await waitTerminal(h.env, slow.body.job_id)
  })

  it('GET /plugin/{name} describes a plugin and its commands', async () => {
    const p = await call(`${h.api}/plugin/echo-sh`, {token: TOKENS.pluginRo})
    assert.deepEqual(p.body.commands, [
      {name: 'poll', type: 'read', description: ''},
      {name: 'handle', type: 'write', description: ''},
    ])
    assert.equal((await call(`${h.api}/plugin/nope`, {token: TOKENS.pluginRo})).status, 404)
  })

  it('never writes a token to the log', () => {
    const log = h.env.logs.join('\n')
    assert.match(log, /http method=POST route=\/plugin\/:plugin\/:command status=401/, 'refusals are logged')
    for (const t of Object.values(TOKENS)) assert.ok(!log.includes(t), 'no token in the log')
  })
})

describe('http api: rate limit and request timeout', () => {
  let h: HttpEnv
  before(async () => {
    h = await startHttpEnv(`${ingressYaml({api: '  rate_limit: {requests: 3, per: 1h}\n  request_timeout: 200ms\n'})}plugins:\n  echo-sh: {}\n`)
  })

  it('a request that does not arrive whole within api.request_timeout is cut off (a slow client holds nothing)', async () => {
    const {hostname, port} = new URL(h.api)
    const sock = connect(Number(port), hostname)
    let answer = ''
    sock.setEncoding('utf8').on('data', (d: string) => (answer += d))
    // Headers, then a body that never comes.
    sock.write('POST /plugin/echo-sh/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pay')
    await new Promise((r) => sock.on('close', r))
    assert.match(answer, /^HTTP\/1\.1 408/, 'answered 408 Request Timeout, then closed')
  })
  after(() => h.close())

  it('each token has its own bucket; past it, 429 with Retry-After and nothing enqueued', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await call(`${h.api}/jobs`, {token: TOKENS.jobsRo})).status, 200)
    const before = rows(h.env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0]!.n
    const r = await call(`${h.api}/plugin/echo-sh/poll`, {token: TOKENS.jobsRo, method: 'POST'})
    assert.equal(r.status, 403, 'scope is checked before the limit is spent')
    const limited = await call(`${h.api}/jobs`, {token: TOKENS.jobsRo})
    assert.equal(limited.status, 429)
    assert.equal(limited.body.error.code, 'rate_limited')
    assert.ok(Number(limited.headers.get('retry-after')) > 0)
    assert.equal(rows(h.env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0]!.n, before)
    assert.equal((await call(`${h.api}/jobs`, {token: TOKENS.all})).status, 200, 'another token is not limited')
  })
})
