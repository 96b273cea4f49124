// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {loadConfig} from '../../src/config/load.js'
import {compilePipelines} from '../../src/plugins/pipelines.js'
import {Router, normalizeEvent} from '../../src/engine/router.js'
import {discoverPlugins} from '../../src/plugins/discover.js'
import {runCli} from '../helpers/cli.js'
import {insertJob} from '../helpers/fixtures.js'
import {assertCitedRowsExist, assertJobRows, jobRow, rows, startEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'

const FULFIL = `plugins:
  step-a:
    uses: pipe-step
    config:
      emit: [{type: order.packed, payload: {carrier: DHL, weight: 3}}]
  step-b:
    uses: pipe-step
  step-c:
    uses: pipe-step
pipelines:
  - name: fulfil
    on: order.placed
    steps:
      - id: pack
        uses: step-a
        baggage: {order.id: payload.order_id}
      - id: ship
        uses: step-b
        baggage: {shipping.carrier: payload.carrier}
        with: {label: "order {context.order.id} via {payload.carrier}"}
      - id: notify
        uses: step-c
`

const ctxRows = (env: ReturnType<typeof testEnv>) => rows(env.db, 'SELECT * FROM event_context ORDER BY created_at, id')
const result = (env: ReturnType<typeof testEnv>, jobId: string) =>
  JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ? ORDER BY attempt DESC', jobId)[0].result).result
const allJobs = (env: ReturnType<typeof testEnv>) => rows(env.db, 'SELECT * FROM job_queue ORDER BY created_at, id')

async function settle(env: ReturnType<typeof testEnv>, n: number) {
  const jobs = await waitFor(`${n} finished jobs`, () => {
    const j = allJobs(env)
    return j.length >= n && j.every((x) => !['queued', 'running'].includes(x.status)) ? j : null
  })
  for (const j of jobs) assertJobRows(env, j.id)
  return jobs
}

describe('pipelines and the baggage ledger', () => {
  it('three steps: step 2 reads baggage claimed by step 1, step 3 sees both; lineage and rows', async () => {
    const env = testEnv(FULFIL)
    const emit = await runCli(['events', 'emit', 'order.placed', '--payload', '{"order_id": 42}', '--config', env.configPath, '--json'])
    assert.equal(emit.code, 0, emit.stderr)
    assert.equal(emit.json().enqueued.length, 1)
    const engine = await startEngine(env)
    try {
      const jobs = await settle(env, 3)
      const [pack, ship, notify] = jobs
      assert.deepEqual(
        jobs.map((j) => [j.plugin, j.status, j.submitted_by]),
        [
          ['step-a', 'succeeded', 'cli'],
          ['step-b', 'succeeded', 'route'],
          ['step-c', 'succeeded', 'route'],
        ],
      )
      assert.equal(pack.parent_job_id, null)
      assert.equal(ship.parent_job_id, pack.id)
      assert.equal(notify.parent_job_id, ship.id)
      const shipEnv = JSON.parse(ship.payload)
      assert.equal(shipEnv.type, 'order.packed')
      assert.equal(shipEnv.source, 'step-a')
      assert.equal(ship.source_event_id, shipEnv.event_id)
      assert.equal(shipEnv.payload.ductile_upstream_plugin, 'step-a')
      assert.equal(shipEnv.payload.ductile_upstream_step_id, 'pack')
      assert.equal(JSON.parse(notify.payload).type, 'ductile.step.succeeded', 'a step that emits nothing advances with a synthetic event')

      const shipSaw = result(env, ship.id)
      assert.deepEqual(shipSaw.context.order, {id: 42}, 'step 2 reads the baggage step 1 claimed')
      assert.equal(shipSaw.context.ductile_pipeline, 'fulfil')
      assert.equal(shipSaw.context.ductile_step_id, 'ship')
      assert.equal(shipSaw.event.payload.label, 'order 42 via DHL', 'with: remaps')
      const notifySaw = result(env, notify.id)
      assert.deepEqual(notifySaw.context.order, {id: 42})
      assert.deepEqual(notifySaw.context.shipping, {carrier: 'DHL'}, 'step 3 sees both')

      const ctx = ctxRows(env)
      assert.equal(ctx.length, 4, 'a root row and one per step')
      const [root, c1, c2, c3] = ctx
      assert.deepEqual([root.parent_id, root.step_id, c1.parent_id, c2.parent_id, c3.parent_id], [null, '', root.id, c1.id, c2.id])
      const instance = JSON.parse(root.accumulated_json).ductile.pipeline_instance_id
      assert.deepEqual(
        ctx.map((c) => JSON.parse(c.accumulated_json).ductile.route_depth),
        [0, 1, 2, 3],
      )
      assert.ok(ctx.every((c) => JSON.parse(c.accumulated_json).ductile.pipeline_instance_id === instance))
      assert.deepEqual([pack.event_context_id, ship.event_context_id, notify.event_context_id], [c1.id, c2.id, c3.id])

      const inspect = await runCli(['jobs', 'inspect', notify.id, '--db', env.dbPath, '--json'])
      const r = inspect.json()
      assert.equal(r.pipeline, 'fulfil')
      assert.equal(r.step, 'notify')
      assert.deepEqual(
        r.lineage.map((c: {id: string}) => c.id),
        [root.id, c1.id, c2.id, c3.id],
      )
      assert.deepEqual(r.baggage.shipping, {carrier: 'DHL'})
      const parent = await runCli(['jobs', 'inspect', pack.id, '--db', env.dbPath, '--json'])
      assert.deepEqual(
        parent.json().children.map((c: {id: string; status: string}) => [c.id, c.status]),
        [[ship.id, 'succeeded']],
      )
      const list = await runCli(['pipelines', 'list', '--config', env.configPath])
      assert.match(list.stdout, /fulfil {2}\(on order\.placed\)\n {2}1\. pack: step-a handle {2}baggage order\.id ← payload\.order_id/)
    } finally {
      await engine.stop()
    }
  })

  it('fan-out to two pipelines makes two jobs; redelivering the same event still makes two', async () => {
    const env = testEnv(`plugins:
  step-a: {uses: pipe-step}
  step-b: {uses: pipe-step}
pipelines:
  - {name: one, on: thing.happened, steps: [{id: s, uses: step-a}]}
  - {name: two, on: thing.happened, steps: [{id: s, uses: step-b}]}
  - {name: other, on: something.else, steps: [{id: s, uses: step-b}]}
`)
    const config = loadConfig(env.configPath)
    const registry = discoverPlugins(config)
    const {pipelines} = compilePipelines(config, registry)
    const router = new Router({db: env.db, pipelines, registry, service: config.service, now: () => new Date(), snapshotId: null})
    const source = insertJob(env.db, {plugin: 'echo-sh', status: 'running'})
    const ev = normalizeEvent({type: 'thing.happened', payload: {n: 1}}, 'echo-sh', new Date())
    const first = env.db.tx(() => router.route(ev, {job: source, plugin: 'echo-sh', submittedBy: 'route'}))
    assert.equal(first.enqueued.length, 2)
    const again = env.db.tx(() => router.route(ev, {job: source, plugin: 'echo-sh', submittedBy: 'route'}))
    assert.equal(again.enqueued.length, 0)
    assert.equal(again.skipped.length, 2, 'redelivery is a no-op, not an error')
    assert.equal(rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE parent_job_id = ?`, source.id)[0].n, 2)
    assert.equal(ctxRows(env).length, 4, 'no context rows for the redelivered dispatches')
    const keyed = normalizeEvent({type: 'thing.happened', payload: {}, dedupe_key: 'k1'}, 'echo-sh', new Date())
    assert.equal(env.db.tx(() => router.route(keyed, {job: source, plugin: 'echo-sh', submittedBy: 'route'})).enqueued.length, 2)
    const keyed2 = normalizeEvent({type: 'thing.happened', payload: {}, dedupe_key: 'k1'}, 'echo-sh', new Date())
    const r2 = env.db.tx(() => router.route(keyed2, {job: source, plugin: 'echo-sh', submittedBy: 'route'}))
    assert.equal(r2.enqueued.length, 0, 'an event dedupe_key is honoured against queued jobs of the target')
  })

  it('a step whose if is false ends skipped with its reason, and the pipeline goes on', async () => {
    const env = testEnv(FULFIL.replace('        with: {label', '        if: payload.carrier == "UPS"\n        with: {label'))
    await runCli(['events', 'emit', 'order.placed', '--payload', '{"order_id": 7}', '--config', env.configPath])
    const engine = await startEngine(env)
    try {
      const jobs = await settle(env, 3)
      const ship = jobs.find((j) => j.plugin === 'step-b')!
      assert.equal(ship.status, 'skipped')
      // The expression and the values it saw (step-a's event says DHL).
      const why = 'if payload.carrier == "UPS" was false (payload.carrier: "DHL")'
      assert.equal(ship.last_error, why)
      assert.deepEqual(JSON.parse(rows(env.db, 'SELECT result FROM job_log WHERE job_id = ?', ship.id)[0].result), {
        status: 'skipped',
        reason: why,
      })
      const story = await runCli(['explain', 'job', ship.id, '--db', env.dbPath, '--json'])
      assert.equal(story.json().summary, `skipped without running its plugin: ${why}`)
      assert.match(story.json().events[0].text, /^enqueued as step \S+ of pipeline \S+, by an event of job /)
      assertCitedRowsExist(env.db, story.json().events)
      const notify = jobs.find((j) => j.plugin === 'step-c')!
      assert.equal(notify.status, 'succeeded')
      assert.equal(notify.parent_job_id, ship.id)
      assert.equal(JSON.parse(notify.payload).type, 'order.packed', 'the skipped step passed its event on')
    } finally {
      await engine.stop()
    }
  })

  it('a cycle is stopped by the route depth limit with a clear error', async () => {
    const env = testEnv(`plugins:
  pinger:
    uses: pipe-step
    config: {emit: [{type: ping}]}
pipelines:
  - {name: loop, on: ping, max_depth: 3, steps: [{id: again, uses: pinger}]}
`)
    await runCli(['events', 'emit', 'ping', '--config', env.configPath])
    const engine = await startEngine(env)
    try {
      const failed = await waitFor('the loop to be stopped', () => allJobs(env).find((j) => j.status === 'failed'))
      assert.match(
        failed.last_error,
        /event routing failed: route depth limit 3 reached: event ping from pinger would start step again of pipeline loop at depth 4 \(is there a cycle\?\)/,
      )
      await settle(env, 3)
      assert.equal(allJobs(env).length, 3)
    } finally {
      await engine.stop()
    }
  })

  it('an immutable-baggage conflict fails the emitting step with a message naming the path', async () => {
    const env = testEnv(`plugins:
  step-a:
    uses: pipe-step
    config: {emit: [{type: next, payload: {order_id: 99}}]}
  step-b: {uses: pipe-step}
pipelines:
  - name: clash
    on: start
    steps:
      - {id: one, uses: step-a, baggage: {order.id: payload.order_id}}
      - {id: two, uses: step-b, baggage: {order.id: payload.order_id}}
`)
    await runCli(['events', 'emit', 'start', '--payload', '{"order_id": 1}', '--config', env.configPath])
    const engine = await startEngine(env)
    try {
      const [one] = await settle(env, 1)
      assert.equal(one.status, 'failed')
      assert.match(one.last_error, /baggage path "order\.id" is immutable: inherited value differs from child value/)
      assert.equal(allJobs(env).length, 1, 'nothing was routed')
      assert.equal(ctxRows(env).length, 2, 'no context row for the refused step')
    } finally {
      await engine.stop()
    }
  })

  it('a failed step does not route its events', async () => {
    const env = testEnv(`plugins:
  step-a:
    uses: pipe-step
    config: {fail: true, emit: [{type: next}]}
  step-b: {uses: pipe-step}
pipelines:
  - {name: p, on: start, steps: [{id: one, uses: step-a}, {id: two, uses: step-b}]}
  - {name: q, on: next, steps: [{id: x, uses: step-b}]}
`)
    await runCli(['events', 'emit', 'start', '--config', env.configPath])
    const engine = await startEngine(env)
    try {
      const [one] = await settle(env, 1)
      assert.equal(one.status, 'failed')
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(allJobs(env).length, 1)
    } finally {
      await engine.stop()
    }
  })

  it('lifecycle hooks fire once per terminal state of a notify_on_complete plugin', async () => {
    const env = testEnv(`plugins:
  watched:
    uses: behave
    notify_on_complete: true
    timeouts: {poll: 1s}
    retry: {max_attempts: 1}
  listener: {uses: pipe-step}
pipelines:
  - {name: on-done, on-hook: job.completed, steps: [{id: l, uses: listener}]}
  - {name: on-fail, on-hook: job.failed, from_plugin: watched, steps: [{id: l, uses: listener}]}
  - {name: on-timeout, on-hook: job.timed_out, steps: [{id: l, uses: listener}]}
`)
    const engine = await startEngine(env)
    try {
      const ok = (await runCli(['jobs', 'enqueue', 'watched', '--payload', '{"mode":"ok"}', '--config', env.configPath])).stdout.trim()
      const bad = (await runCli(['jobs', 'enqueue', 'watched', '--payload', '{"mode":"retry_false"}', '--config', env.configPath])).stdout.trim()
      const slow = (await runCli(['jobs', 'enqueue', 'watched', '--payload', '{"mode":"hang"}', '--config', env.configPath])).stdout.trim()
      for (const id of [ok, bad, slow]) await waitTerminal(env, id)
      const hooks = await waitFor('three hook jobs to finish', () => {
        const h = rows(env.db, `SELECT * FROM job_queue WHERE submitted_by = 'hook' ORDER BY created_at`)
        return h.length >= 3 && h.every((x) => x.status === 'succeeded') ? h : null
      })
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(
        rows(env.db, `SELECT COUNT(*) AS n FROM job_queue WHERE submitted_by = 'hook'`)[0].n,
        3,
        'once per terminal state, and hook jobs fire no hooks',
      )
      const byParent = Object.fromEntries(hooks.map((h) => [h.parent_job_id, JSON.parse(h.payload)]))
      assert.equal(byParent[ok].type, 'job.completed')
      assert.deepEqual([byParent[ok].payload.status, byParent[ok].payload.result], ['succeeded', 'fine'])
      assert.equal(byParent[bad].type, 'job.failed')
      assert.equal(byParent[bad].payload.error, 'bad input, do not retry')
      assert.equal(byParent[slow].type, 'job.timed_out')
      assert.equal(jobRow(env.db, slow).status, 'timed_out')
    } finally {
      await engine.stop()
    }
  })

  it('accumulated baggage over 1 MiB is refused with a clear error, and nothing is enqueued', async () => {
    const env = testEnv(`plugins:
  step-a: {uses: pipe-step}
pipelines:
  - name: heavy
    on: big
    steps:
      - {id: one, uses: step-a, baggage: {copy.a: payload.blob, copy.b: payload.blob}}
`)
    const blob = 'b'.repeat(600_000)
    const r = await runCli(['events', 'emit', 'big', '--payload-file', '-', '--config', env.configPath, '--json'], {input: JSON.stringify({blob})})
    assert.equal(r.code, 2)
    assert.match(r.json().error.message, /accumulated context exceeds max size \(1048576 bytes\) at step one of pipeline heavy/)
    assert.equal(allJobs(env).length, 0)
    assert.equal(ctxRows(env).length, 0, 'the root row rolled back too')
  })

  it('config errors name the file and the pipeline: unknown plugin, missing command, duplicate step ids, bad expressions', async () => {
    const env = testEnv(`pipelines:
  - name: broken
    on: x
    if: payload.a ==
    steps:
      - {id: s, uses: nope}
      - {id: s, uses: echo-sh, command: frob}
`)
    const r = await runCli(['config', 'check', '--config', env.configPath, '--json'])
    assert.equal(r.code, 2)
    const msgs = r.json().errors.map((e: {path: string; message: string}) => `${e.path}: ${e.message}`)
    assert.ok(
      msgs.some((m: string) => /pipelines\[broken\]\.if: bad expression "payload\.a ==": unexpected end of expression/.test(m)),
      msgs.join('\n'),
    )
    assert.ok(msgs.some((m: string) => /pipelines\[broken\]\.steps\[s\]\.uses: unknown plugin nope/.test(m)))
    assert.ok(msgs.some((m: string) => /duplicate step id s/.test(m)))
    assert.ok(msgs.some((m: string) => /plugin echo-sh has no command frob/.test(m)))
    assert.ok(r.json().errors.every((e: {file: string}) => e.file === env.configPath))
    const start = await runCli(['engine', 'start', '--config', env.configPath])
    assert.equal(start.code, 2, 'the engine refuses an invalid pipeline')
  })
})
