import type {FastifyInstance} from 'fastify'

import type {Listen} from '../config/types.js'
import {DuctileError, errorMessage} from '../errors.js'
import {buildApi} from './api.js'
import type {HttpDeps} from './app.js'
import {buildWebhooks} from './webhooks.js'

/**
 * The engine's listeners: the API when api.enabled, the webhooks when webhooks.listen is set. Started after
 * the engine (the database is open, crash recovery is done) and closed before it stops, so no request is
 * accepted that the engine will not see through.
 */

export interface Listeners {
  /** host:port actually bound (port 0 in the config picks a free one). */
  api: string | null
  webhooks: string | null
  /** Stop accepting, end event streams and synchronous waits, finish requests in flight. */
  close(): Promise<void>
}

async function listen(app: FastifyInstance, l: Listen, what: string, key: string): Promise<string> {
  try {
    await app.listen({host: l.host, port: l.port})
  } catch (err) {
    const code = (err as {code?: string}).code
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : errorMessage(err)
    throw new DuctileError('runtime', `cannot listen for ${what} on ${l.text}: ${why}`, {hint: `stop what holds it or change ${key}`})
  }
  const a = app.server.address()
  return a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : l.text
}

export async function startListeners(d: HttpDeps): Promise<Listeners> {
  const apps: FastifyInstance[] = []
  const close = async () => {
    await Promise.all(apps.map((a) => a.close()))
  }
  try {
    let api: string | null = null
    let webhooks: string | null = null
    if (d.config.api.enabled) {
      const {app} = buildApi(d)
      apps.push(app)
      api = await listen(app, d.config.api.listen, 'the API', 'api.listen')
      d.logger.info('api listening', {address: api, tokens: d.config.api.tokens.length})
    }
    const wl = d.config.webhooks.listen
    if (wl) {
      const app = buildWebhooks(d, d.config.webhooks.endpoints)
      apps.push(app)
      webhooks = await listen(app, wl, 'webhooks', 'webhooks.listen')
      d.logger.info('webhooks listening', {address: webhooks, endpoints: d.config.webhooks.endpoints.map((e) => e.path).join(',')})
    }
    return {api, webhooks, close}
  } catch (err) {
    await close()
    throw err
  }
}
