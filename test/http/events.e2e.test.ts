// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {EventEmitter} from 'node:events'
import {createServer, get} from 'node:http'
import {connect} from 'node:net'
import type {AddressInfo} from 'node:net'
import {after, before, describe, it} from 'node:test'

import type {EngineEventMap} from '../../src/engine/events.js'
import {EventStream, type StreamEvent} from '../../src/http/stream.js'
import {rows, waitFor} from '../helpers/engine.js'
import {type HttpEnv, TOKENS, call, ingressYaml, startHttpEnv} from '../helpers/http.js'

/** GET /events: the engine's job events as Server-Sent Events, heartbeats, and slow clients dropped. */

interface Sse {
  events: StreamEvent[]
  comments: string[]
  close(): void
}

function subscribe(url: string, token: string): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const s: Sse = {events: [], comments: [], close: () => {}}
    const req = get(url, {headers: {authorization: `Bearer ${token}`}}, (res) => {
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/event-stream/)
      let buf = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, i)
          buf = buf.slice(i + 2)
          if (frame.startsWith(':')) s.comments.push(frame)
          const data = frame.split('\n').find((l) => l.startsWith('data: '))
          if (data) s.events.push(JSON.parse(data.slice('data: '.length)))
        }
        if (s.comments.length === 1 && s.comments[0] === ': connected') resolve(s)
      })
    })
    req.on('error', reject)
    s.close = () => req.destroy()
  })
}

describe('events: the live stream', () => {
  let h: HttpEnv
  before(async () => {
    h = await startHttpEnv(`${ingressYaml({api: '  heartbeat: 50ms\n'})}plugins:\n  echo-sh: {}\n  behave: {retry: {max_attempts: 2, backoff_base: 10ms}}\n`)
  })
  after(() => h.close())

  it('tells a job started and completed, a retry and a failure, in order, one JSON object per event, with heartbeats', async () => {
    const s = await subscribe(`${h.api}/events`, TOKENS.eventsRo)
    try {
      const ok = (await call(`${h.api}/plugin/echo-sh/poll`, {token: TOKENS.all, method: 'POST'})).body.job_id
      const bad = (await call(`${h.api}/plugin/behave/handle`, {token: TOKENS.all, json: {payload: {mode: 'error'}}})).body.job_id
      const of = (id: string) => s.events.filter((e) => e.data.job_id === id).map((e) => e.type)
      await waitFor('the good job to complete', () => of(ok).includes('job.completed'))
      assert.deepEqual(of(ok), ['job.started', 'job.completed'])
      await waitFor('the bad job to fail for good', () => of(bad).includes('job.failed'))
      assert.deepEqual(of(bad), ['job.started', 'job.retry_scheduled', 'job.started', 'job.failed'])
      const failed = s.events.find((e) => e.data.job_id === bad && e.type === 'job.failed')!
      assert.equal(failed.data.error, 'upstream said no')
      assert.equal(failed.data.plugin, 'behave')
      assert.match(String(failed.at), /Z$/)
      const ids = s.events.map((e) => e.id)
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        'ids increase',
      )
      await waitFor('a heartbeat', () => s.comments.includes(': heartbeat'))
      assert.equal((await call(`${h.api}/healthz`)).body.event_clients, 1)
    } finally {
      s.close()
    }
  })
})

describe('events: breakers', () => {
  let h: HttpEnv
  before(async () => {
    h = await startHttpEnv(
      `${ingressYaml()}plugins:\n  behave: {}\n  flaky:\n    uses: behave\n    retry: {max_attempts: 1}\n    circuit_breaker: {threshold: 1, reset_after: 1h}\n` +
        '    schedules: [{id: hourly, every: 1h, command: poll, payload: {mode: error}}]\n',
    )
  })
  after(() => h.close())

  it('tells a breaker that opened (scheduler.circuit_state_changed)', async () => {
    const s = await subscribe(`${h.api}/events`, TOKENS.all)
    try {
      // The engine's first tick (at its start) fired the schedule; the next one judges its failed job.
      await waitFor('the scheduled job to fail', () => rows(h.env.db, "SELECT 1 FROM job_queue WHERE plugin = 'flaky' AND status = 'failed'").length)
      await h.engine.tick()
      const opened = await waitFor('the breaker event', () => s.events.find((e) => e.type === 'scheduler.circuit_state_changed'))
      assert.deepEqual({...opened.data}, {plugin: 'flaky', command: 'poll', from: null, to: 'open', reason: 'failure_threshold', failure_count: 1})
    } finally {
      s.close()
    }
  })
})

describe('events: a slow client', () => {
  it('is dropped once its unsent data passes the bound, and publishing never waits for it', async () => {
    const events = new EventEmitter<EngineEventMap>()
    const stream = new EventStream(events, [], 64 * 1024)
    const server = createServer((_req, res) => stream.add(res, 60_000))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const {port} = server.address() as AddressInfo
    // A client that sends its request and then never reads.
    const sock = connect(port, '127.0.0.1')
    sock.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n')
    sock.pause()
    try {
      await waitFor('the client to be added', () => stream.size === 1)
      const big = {blob: 'x'.repeat(16 * 1024)}
      // Far more than the socket and the bound hold: each publish returns at once.
      for (let i = 0; i < 2000 && stream.size > 0; i++) stream.publish('job.completed', big)
      assert.equal(stream.size, 0, 'the client was dropped')
      assert.equal(stream.dropped, 1)
    } finally {
      sock.destroy()
      stream.close()
      server.close()
    }
  })
})
