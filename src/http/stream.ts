import type {EventEmitter} from 'node:events'
import type {ServerResponse} from 'node:http'

import {redact} from '../config/secrets.js'
import type {EngineEventMap} from '../engine/events.js'
import {rfc3339} from './wire.js'

/**
 * GET /events: the engine's job and breaker events as Server-Sent Events, one JSON object per event
 * (`{id, type, at, data}`), with a comment line every heartbeat so proxies keep an idle stream open. Events
 * are not stored: a client sees what happens while it is connected. Writing never waits: a client whose
 * unsent data passes MAX_BUFFERED_BYTES (it reads slower than the engine works) is dropped, so a slow
 * client never slows the engine or the other clients.
 */

export const MAX_BUFFERED_BYTES = 1 << 20
const MAX_ERROR = 2000

export interface StreamEvent {
  id: number
  type: string
  at: string | null
  data: Record<string, unknown>
}

interface Client {
  res: ServerResponse
  heartbeat: NodeJS.Timeout
}

export class EventStream {
  private readonly clients = new Set<Client>()
  private seq = 0
  private readonly detach: () => void
  /** Clients dropped for reading too slowly (healthz and tests read it). */
  dropped = 0

  constructor(
    events: EventEmitter<EngineEventMap>,
    private readonly secrets: string[],
    private readonly maxBuffered = MAX_BUFFERED_BYTES,
  ) {
    const job = (j: {id: string; plugin: string; command: string; attempt: number}) => ({
      job_id: j.id,
      plugin: j.plugin,
      command: j.command,
      attempt: j.attempt,
    })
    const onStart: (...a: EngineEventMap['job:start']) => void = ({job: j}) => this.publish('job.started', job(j))
    const onEnd: (...a: EngineEventMap['job:end']) => void = (e) => {
      const type =
        e.status === 'succeeded' ? 'job.completed' : e.status === 'timed_out' ? 'job.timed_out' : e.status === 'skipped' ? 'job.skipped' : 'job.failed'
      this.publish(type, {...job(e.job), status: e.status, ...(e.error ? {error: this.clip(e.error)} : {})})
    }
    const onRetry: (...a: EngineEventMap['job:retry']) => void = (e) =>
      this.publish('job.retry_scheduled', {...job(e.job), retry_at: rfc3339(e.retryAt), ...(e.error ? {error: this.clip(e.error)} : {})})
    const onBreaker: (...a: EngineEventMap['breaker:change']) => void = (c) =>
      this.publish('scheduler.circuit_state_changed', {
        plugin: c.plugin,
        command: c.command,
        from: c.from,
        to: c.to,
        reason: c.reason,
        failure_count: c.failureCount,
      })
    events.on('job:start', onStart)
    events.on('job:end', onEnd)
    events.on('job:retry', onRetry)
    events.on('breaker:change', onBreaker)
    this.detach = () => {
      events.off('job:start', onStart)
      events.off('job:end', onEnd)
      events.off('job:retry', onRetry)
      events.off('breaker:change', onBreaker)
    }
  }

  private clip(text: string): string {
    const t = redact(text, this.secrets)
    return t.length > MAX_ERROR ? `${t.slice(0, MAX_ERROR)}…` : t
  }

  get size(): number {
    return this.clients.size
  }

  /** Take over a response as an event stream until the client leaves or the stream closes. */
  add(res: ServerResponse, heartbeatMs: number): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx buffers responses unless told not to.
      'x-accel-buffering': 'no',
    })
    const client: Client = {res, heartbeat: setInterval(() => this.write(client, ': heartbeat\n\n'), heartbeatMs)}
    client.heartbeat.unref()
    this.clients.add(client)
    res.on('close', () => this.remove(client))
    this.write(client, ': connected\n\n')
  }

  publish(type: string, data: Record<string, unknown>): void {
    if (this.clients.size === 0) return
    const event: StreamEvent = {id: ++this.seq, type, at: new Date().toISOString(), data}
    // JSON.stringify escapes every line break: one event is one data line, whatever a plugin wrote.
    const frame = `id: ${event.id}\nevent: ${type}\ndata: ${JSON.stringify(event)}\n\n`
    for (const c of this.clients) this.write(c, frame)
  }

  private write(c: Client, frame: string): void {
    if (c.res.writableLength > this.maxBuffered) {
      this.dropped++
      this.remove(c)
      c.res.destroy()
      return
    }
    c.res.write(frame)
  }

  private remove(c: Client): void {
    clearInterval(c.heartbeat)
    this.clients.delete(c)
  }

  /** End every stream and stop listening to the engine. */
  close(): void {
    this.detach()
    for (const c of [...this.clients]) {
      this.remove(c)
      c.res.end()
    }
  }
}
