import {readFileSync} from 'node:fs'

import type {FastifyInstance, FastifyReply, FastifyRequest} from 'fastify'

import {longestTimeout} from '../cli/doctor.js'
import {parsePayloadText} from '../cli/payload.js'
import {applyScheduleChange} from '../cli/schedules.js'
import type {ApiToken, Config, Scope} from '../config/types.js'
import {schedulesOf} from '../config/schedules.js'
import {enqueueCommand} from '../engine/ingress.js'
import type {PluginRegistry} from '../plugins/discover.js'
import {resetBreaker} from '../queries/breakers.js'
import {changeMark} from '../queries/overview.js'
import {cancelQueuedJob, retryJob} from '../queries/queue.js'
import type {Db} from '../schema/db.js'
import {formatTs} from '../schema/time.js'
import {DuctileError, errorMessage} from '../errors.js'
import {ownFile} from '../assets.js'
import {RateLimiter} from '../lib/auth.js'
import {PageData} from './data.js'
import type {Safe} from './html.js'
import * as pages from './pages.js'
import {COOKIE, type Session, Sessions, cookieValue, csrfOk, may, sameOrigin} from './session.js'

/**
 * The web Overwatch's routes, registered on a Fastify instance under a prefix: '' for `ductile web`, '/ui'
 * under the engine's API listener (api.ui). Pages are rendered on the server; one small script of ours
 * (assets/web.js) follows one server-sent event stream per tab and redraws the page's main part when the
 * database changed. Actions are POSTs of plain forms: a session made with an API token of the right scope,
 * its CSRF token, and an Origin of this host.
 */

export interface WebDeps {
  /** Reads: a read-only handle for `ductile web`, the listeners' connection under the engine. */
  db: Db
  /** The handle actions write through (its owner opens it on first use and closes it); null in read-only mode. */
  writer: (() => Db) | null
  config: Config | null
  registry: PluginRegistry | null
  tokens: ApiToken[]
  /** Pages may be read without a session (the listener is on loopback). */
  openRead: boolean
  /** Tell the engine there is new work (a signal on this host, the listeners' wake under the engine). */
  wake: () => void
  /** How often the change stream looks at the database. */
  pollMs?: number
  log?: (message: string, fields: Record<string, unknown>) => void
}

const ASSETS: Record<string, string> = {'web.css': 'text/css; charset=utf-8', 'web.js': 'text/javascript; charset=utf-8', 'favicon.svg': 'image/svg+xml'}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
}

type Req = FastifyRequest<{Params: Record<string, string>; Querystring: Record<string, string>; Body: Record<string, string>}>

export function registerWeb(app: FastifyInstance, d: WebDeps, prefix: '' | '/ui'): {close: () => void} {
  const sessions = new Sessions(d.tokens)
  const data = new PageData(d.db, d.registry, d.config?.service.engine_lease_ms, longestTimeout(d.config), d.config?.service.tick_interval_ms)
  const flashes = new Map<string, {kind: 'ok' | 'error'; text: string}>()
  const assets = new Map<string, Buffer>()
  const readOnly = d.writer === null
  const writer = (): Db => {
    if (!d.writer) throw new DuctileError('usage', 'the web Overwatch is read-only')
    return d.writer()
  }
  // Sign-in attempts per address: tokens are long and random, but a guesser is slowed all the same.
  const signIns = new RateLimiter({requests: 10, perMs: 60_000})

  // One look at the database per interval for every open page together; a change is sent to each stream.
  const streams = new Set<FastifyReply>()
  let mark = ''
  let beats = 0
  const timer = setInterval(() => {
    if (streams.size === 0) return
    let next = mark
    try {
      next = changeMark(d.db)
    } catch (err) {
      d.log?.('web: could not read the change mark', {error: errorMessage(err)})
    }
    beats++
    // A change, or every tenth look anyway (elapsed times and heartbeats move without a write).
    if (next === mark && beats % 10 !== 0) return
    mark = next
    for (const s of streams) s.raw.write(`event: change\ndata: ${beats}\n\n`)
  }, d.pollMs ?? 1000)
  timer.unref()

  void app.register(
    async (f) => {
      f.addContentTypeParser('application/x-www-form-urlencoded', {parseAs: 'string', bodyLimit: 256 * 1024}, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(String(body))))
      })
      // Server-Timing: how long the page took here (the bench reads it; so can a browser's developer tools).
      const started = new WeakMap<object, number>()
      f.addHook('onRequest', async (req) => {
        started.set(req, performance.now())
      })
      f.addHook('onSend', async (req, reply, payload) => {
        const t = started.get(req)
        if (t !== undefined) reply.header('server-timing', `app;dur=${(performance.now() - t).toFixed(1)}`)
        reply.headers(SECURITY_HEADERS)
        return payload
      })
      f.setErrorHandler((err, req, reply) => {
        const e = err as {statusCode?: number}
        const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500
        if (status >= 500) d.log?.('web request failed', {route: req.routeOptions.url, error: errorMessage(err)})
        void page(
          req as Req,
          reply.code(status),
          'Error',
          '',
          pages.errorPage(status, status >= 500 ? 'internal error: the log has the detail' : errorMessage(err)),
        )
      })
      f.setNotFoundHandler((req, reply) => {
        void page(req as Req, reply.code(404), 'Not found', '', pages.errorPage(404, `nothing at ${req.url.split('?')[0]?.slice(0, 200)}`))
      })

      const session = (req: Req) => sessions.fromCookie(req.headers.cookie)
      const ctx = (req: Req, s: Session | null): pages.Ctx => {
        // What an action said is shown by the page its redirect loads: a live redraw (of the page the form was
        // on, racing the redirect) must not take it.
        const partial = req.headers['x-ductile-partial'] === '1'
        const fl = s && !partial ? flashes.get(s.id) : undefined
        if (fl && s) flashes.delete(s.id)
        return {
          base: prefix,
          csrf: s?.csrf ?? null,
          can: {jobs: !readOnly && may(s, 'jobs:rw'), plugins: !readOnly && may(s, 'plugin:rw')},
          readOnly,
          signedIn: s?.name ?? null,
          canSignIn: d.tokens.length > 0,
          flash: fl,
        }
      }
      /**
       * A whole page, or its main part alone for the live redraw (x-ductile-partial). `body` is given the
       * request's context, made once (making it takes the pending flash).
       */
      const page = (req: Req, reply: FastifyReply, title: string, current: string, body: Safe | ((c: pages.Ctx) => Safe)) => {
        const c = ctx(req, session(req))
        const main = typeof body === 'function' ? body(c) : body
        reply.header('cache-control', 'no-store').type('text/html; charset=utf-8')
        if (req.headers['x-ductile-partial'] === '1') return reply.send(main.html)
        return reply.send(pages.layout(c, title, current, main).html)
      }
      /** Pages beyond loopback need a session; the answer otherwise is the sign-in page. */
      const readable = (req: Req, reply: FastifyReply): boolean => {
        if (d.openRead || session(req)) return true
        void reply.redirect(`${prefix}/login`, 303)
        return false
      }

      f.get('/assets/:file', async (req: Req, reply) => {
        const name = req.params.file ?? ''
        const type = ASSETS[name]
        if (!type) return reply.callNotFound()
        let body = assets.get(name)
        if (!body) {
          body = readFileSync(ownFile(`web/assets/${name}`))
          assets.set(name, body)
        }
        return reply.type(type).header('cache-control', 'no-cache').send(body)
      })

      f.get('/', async (req: Req, reply) => {
        if (readable(req, reply)) return page(req, reply, 'Overview', '', (c) => pages.overviewPage(c, data.overview()))
      })
      f.get('/jobs', async (req: Req, reply) => {
        if (!readable(req, reply)) return
        const q = req.query
        const filter = {status: q.status, plugin: q.plugin, command: q.command, from: q.from, to: q.to, q: q.q}
        return page(req, reply, 'Jobs', '/jobs', (c) => pages.jobsPage(c, data.jobs({...filter, before: q.before})))
      })
      f.get('/jobs/:id', async (req: Req, reply) => {
        if (!readable(req, reply)) return
        const id = req.params.id ?? ''
        const r = data.job(id)
        if (!r)
          return page(
            req,
            reply.code(404),
            'Job',
            '/jobs',
            pages.errorPage(404, `no job ${id} in the queue (finished jobs leave it after service.job_queue_retention); its attempts stay on the Jobs page`),
          )
        return page(req, reply, `Job ${id.slice(0, 8)}`, '/jobs', (c) => pages.jobPage(c, r.inspection, r.tree))
      })
      f.get('/plugins', async (req: Req, reply) => {
        if (!readable(req, reply)) return
        return page(req, reply, 'Plugins', '/plugins', (c) => pages.pluginsPage(c, data.plugins(), c.can.plugins && d.registry !== null))
      })
      f.get('/plugins/:name', async (req: Req, reply) => {
        if (!readable(req, reply)) return
        const name = req.params.name ?? ''
        const p = data.plugin(name, !readOnly && may(session(req), 'plugin:rw'))
        if (!p) return page(req, reply.code(404), 'Plugin', '/plugins', pages.errorPage(404, `no plugin ${name}: not in the config and nothing recorded`))
        return page(req, reply, `Plugin ${name}`, '/plugins', (c) => pages.pluginPage(c, p))
      })
      f.get('/breakers', async (req: Req, reply) => {
        if (!readable(req, reply)) return
        const b = data.breakers()
        return page(req, reply, 'Breakers', '/breakers', (c) => pages.breakersPage(c, b.rows, b.history))
      })
      f.get('/schedules', async (req: Req, reply) => {
        if (!readable(req, reply)) return
        const s = data.schedules()
        return page(req, reply, 'Schedules', '/schedules', (c) => pages.schedulesPage(c, s.rows, s.overdue))
      })

      f.get('/events', async (req: Req, reply) => {
        if (!d.openRead && !session(req)) return reply.code(401).send('sign in first')
        reply.hijack()
        reply.raw.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', ...SECURITY_HEADERS})
        reply.raw.write('retry: 2000\n\n')
        streams.add(reply)
        req.raw.on('close', () => streams.delete(reply))
      })

      f.get('/login', async (req: Req, reply) => {
        if (d.tokens.length === 0)
          return page(req, reply.code(404), 'Sign in', '', pages.errorPage(404, 'no tokens are configured (api.auth.tokens): nothing to sign in with'))
        return page(req, reply, 'Sign in', '', (c) => pages.loginPage(c))
      })
      f.post('/login', async (req: Req, reply) => {
        if (!sameOrigin(req.headers.origin, req.headers.host))
          return page(req, reply.code(403), 'Sign in', '', pages.errorPage(403, 'a sign-in from another site'))
        const wait = signIns.take(req.ip)
        if (wait > 0) {
          reply.header('retry-after', String(Math.ceil(wait / 1000)))
          return page(req, reply.code(429), 'Sign in', '', (c) => pages.loginPage(c, 'Too many sign-ins from this address: wait a minute.'))
        }
        const s = sessions.signIn(String(req.body?.token ?? ''))
        if (!s) {
          d.log?.('web: sign-in refused', {remote: req.ip})
          return page(req, reply.code(401), 'Sign in', '', (c) => pages.loginPage(c, 'That token is not one of api.auth.tokens.'))
        }
        // Behind a TLS-terminating proxy (which says so), the cookie is never sent over plain HTTP.
        const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : ''
        reply.header('set-cookie', `${COOKIE}=${s.id}; Path=${prefix || '/'}; HttpOnly; SameSite=Strict${secure}`)
        return reply.redirect(`${prefix}/`, 303)
      })
      f.post('/logout', async (req: Req, reply) => {
        const s = session(req)
        if (s && csrfOk(s, req.body?._csrf)) sessions.signOut(cookieValue(req.headers.cookie, COOKIE))
        reply.header('set-cookie', `${COOKIE}=; Path=${prefix || '/'}; HttpOnly; SameSite=Strict; Max-Age=0`)
        return reply.redirect(`${prefix}/`, 303)
      })

      if (readOnly) return

      /** An action: signed in, with the scope, the CSRF token and this host's Origin; then `run`, a flash, and back. */
      const act = (scope: Scope, run: (req: Req, s: Session) => {text: string; to: string}) => async (req: Req, reply: FastifyReply) => {
        const s = session(req)
        if (!s) return reply.redirect(`${prefix}/login`, 303)
        if (!sameOrigin(req.headers.origin, req.headers.host) || !csrfOk(s, req.body?._csrf))
          return page(req, reply.code(403), 'Not allowed', '', pages.errorPage(403, 'the form is stale or from another site: reload the page and try again'))
        if (!may(s, scope)) return page(req, reply.code(403), 'Not allowed', '', pages.errorPage(403, `your token (${s.name}) lacks the scope ${scope}`))
        let to = backTo(req.headers.referer, req.headers.host, prefix)
        try {
          const r = run(req, s)
          flashes.set(s.id, {kind: 'ok', text: r.text})
          if (r.to) to = r.to
          d.log?.('web action', {by: s.name, route: req.routeOptions.url, result: r.text})
        } catch (err) {
          flashes.set(s.id, {kind: 'error', text: errorMessage(err)})
        }
        return reply.redirect(to, 303)
      }
      const now = () => formatTs(new Date())

      f.post(
        '/jobs/:id/retry',
        act('jobs:rw', (req) => {
          const db = writer()
          const r = retryJob(db, req.params.id ?? '', now(), 'web')
          if (!r.ok)
            throw new DuctileError(
              'conflict',
              r.reason ?? (r.status ? `the job is ${r.status}: only finished jobs can be retried` : 'no such job in the queue'),
            )
          d.wake()
          return {text: `Retried as job ${r.job.id}.`, to: `${prefix}/jobs/${r.job.id}`}
        }),
      )
      f.post(
        '/jobs/:id/cancel',
        act('jobs:rw', (req) => {
          const r = cancelQueuedJob(writer(), req.params.id ?? '', now(), 'cancelled by operator (web)')
          if (!r.ok) throw new DuctileError('conflict', r.status ? `the job is ${r.status}: only queued jobs can be cancelled` : 'no such job in the queue')
          return {text: 'Cancelled.', to: ''}
        }),
      )
      f.post(
        '/plugins/:name/enqueue',
        act('plugin:rw', (req) => {
          if (!d.registry || !d.config) throw new DuctileError('usage', 'enqueueing needs the config: start `ductile web` with --config')
          const plugin = req.params.name ?? ''
          const command = String(req.body?.command ?? 'poll')
          const payload = parsePayloadText(String(req.body?.payload ?? '').trim() || '{}', 'the payload')
          const r = enqueueCommand(
            {db: writer(), registry: d.registry, service: d.config.service, snapshotId: null, now: new Date()},
            {plugin, command, payload, origin: 'web'},
          )
          if (r.status === 'duplicate_event') throw new DuctileError('conflict', r.reason)
          if (r.status === 'deduplicated') return {text: r.reason, to: ''}
          d.wake()
          return {text: `Enqueued job ${r.job.id}.`, to: `${prefix}/jobs/${r.job.id}`}
        }),
      )
      for (const [verb, to] of [
        ['pause', 'paused_manual'],
        ['resume', 'active'],
      ] as const)
        f.post(
          `/schedules/:plugin/:id/${verb}`,
          act('plugin:rw', (req) => {
            const plugin = req.params.plugin ?? ''
            const schedule = req.params.id ?? ''
            const reason = verb === 'pause' ? String(req.body?.reason || 'paused from the web Overwatch') : null
            applyScheduleChange(writer(), {plugin, schedule, to, reason, configured: d.config ? schedulesOf(d.config, plugin) : []})
            return {text: `${verb === 'pause' ? 'Paused' : 'Resumed'} ${plugin}/${schedule}.`, to: ''}
          }),
        )
      f.post(
        '/breakers/:plugin/:command/reset',
        act('plugin:rw', (req) => {
          const plugin = req.params.plugin ?? ''
          const command = req.params.command ?? ''
          const r = resetBreaker(writer(), plugin, command, now())
          return {text: r ? `Reset the breaker of ${plugin} (${command}): ${r.from} → closed.` : `${plugin} (${command}) has no breaker to reset.`, to: ''}
        }),
      )
    },
    {prefix},
  )

  return {
    close: () => {
      clearInterval(timer)
      for (const s of streams) s.raw.end()
      streams.clear()
    },
  }
}

/** Where an action returns: the page its form was on (this host, under the prefix), else the overview. */
function backTo(referer: string | undefined, host: string | undefined, prefix: string): string {
  try {
    const u = new URL(referer ?? '')
    if (u.host === host && (u.pathname === prefix || u.pathname.startsWith(`${prefix}/`))) return u.pathname + u.search
  } catch {
    // no referer, or not a URL
  }
  return `${prefix}/`
}
