import type {FastifyInstance} from 'fastify'

import type {WebhookEndpoint} from '../config/types.js'
import {enqueueCommand} from '../engine/ingress.js'
import {parseJsonOr, isMap} from '../lib/json.js'
import {verifySignature} from '../lib/auth.js'
import {type HttpDeps, HttpError, createApp, ingressContext} from './app.js'

/**
 * Signed webhooks (the original's WEBHOOKS): each endpoint's path takes POSTs whose raw body is signed with
 * HMAC-SHA256 under the endpoint's secret. A verified request enqueues one job of the endpoint's plugin and
 * command; a bad or missing signature is 401 and enqueues nothing; a body over max_body_size is 413 before
 * it is read whole. The same delivery id (X-GitHub-Delivery and its kin) twice is one job.
 */

/** Headers that name a delivery, first found wins: its redelivery is the same job. */
const DELIVERY_HEADERS = ['x-github-delivery', 'x-gitlab-event-uuid', 'x-delivery-id', 'x-webhook-id', 'idempotency-key', 'x-request-id']
/** Headers that name the event type. */
const EVENT_HEADERS = ['x-github-event', 'x-gitlab-event', 'x-event-key', 'x-event-type']
/** Delivery headers the plugin may need; never the signature or anything that authenticates. */
const PASSED_HEADERS = [...EVENT_HEADERS, ...DELIVERY_HEADERS, 'x-github-hook-id', 'x-github-hook-installation-target-type', 'content-type', 'user-agent']

const first = (h: Record<string, string | string[] | undefined>, names: string[]): string | undefined => {
  for (const n of names) {
    const v = h[n]
    const s = Array.isArray(v) ? v[0] : v
    if (s) return s.slice(0, 200)
  }
  return undefined
}

export function buildWebhooks(d: HttpDeps, endpoints: WebhookEndpoint[]): FastifyInstance {
  const biggest = Math.max(1, ...endpoints.map((e) => e.max_body_bytes))
  const app = createApp(d, {bodyLimit: biggest, requestTimeoutMs: d.config.api.request_timeout_ms})
  // Every body stays raw: the signature is over the bytes as sent.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', {parseAs: 'buffer'}, (_req, body, done) => done(null, body))

  app.get('/healthz', async () => ({status: 'ok', endpoints: endpoints.length, version: d.version}))

  for (const ep of endpoints) {
    app.post(ep.path, {bodyLimit: ep.max_body_bytes}, async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
      const header = req.headers[ep.signature_header.toLowerCase()]
      const signature = Array.isArray(header) ? header[0] : header
      if (!signature) throw new HttpError(401, 'signature_missing', `the ${ep.signature_header} header is missing: sign the body with HMAC-SHA256`)
      if (!verifySignature(body, signature, ep.secret))
        throw new HttpError(401, 'signature_invalid', `the ${ep.signature_header} signature does not match the body (HMAC-SHA256, hex, optionally sha256=)`)
      const text = body.toString('utf8')
      const parsed = parseJsonOr<unknown>(text, undefined)
      const payload: Record<string, unknown> = isMap(parsed) ? parsed : {body: parsed === undefined ? text : parsed}
      const delivery = first(req.headers, DELIVERY_HEADERS)
      const headers: Record<string, string> = {}
      for (const n of PASSED_HEADERS) {
        const v = first(req.headers, [n])
        if (v) headers[n] = v
      }
      const r = await d.commit.run(() =>
        enqueueCommand(ingressContext(d), {
          plugin: ep.plugin,
          command: ep.command,
          payload,
          origin: 'webhook',
          submittedBy: `webhook:${ep.name}`,
          dedupeKey: delivery ? `webhook:${ep.name}:${delivery}` : undefined,
          dedupeOutstanding: true,
          envelope: {webhook: {endpoint: ep.name, event: first(req.headers, EVENT_HEADERS) ?? null, delivery: delivery ?? null, headers}},
        }),
      )
      if (r.status === 'deduplicated') return reply.code(200).send({job_id: r.existingJobId, status: 'duplicate', plugin: ep.plugin, command: ep.command})
      if (r.status !== 'enqueued') throw new HttpError(409, 'conflict', r.reason)
      return reply.code(202).send({job_id: r.job.id, status: 'queued', plugin: ep.plugin, command: ep.command})
    })
  }
  return app
}
