import Fastify from 'fastify'

import type {Listen} from '../config/types.js'
import {DuctileError, errorMessage} from '../errors.js'
import {type WebDeps, registerWeb} from './app.js'

/** `ductile web`: a listener of its own serving the Overwatch at '/'. */
export async function startWeb(o: {listen: Listen; deps: WebDeps}): Promise<{url: string; close: () => Promise<void>}> {
  const app = Fastify({logger: false, return503OnClosing: true, bodyLimit: 256 * 1024})
  const web = registerWeb(app, o.deps, '')
  try {
    await app.listen({host: o.listen.host, port: o.listen.port})
  } catch (err) {
    web.close()
    const code = (err as {code?: string}).code
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : errorMessage(err)
    throw new DuctileError('runtime', `cannot listen on ${o.listen.text}: ${why}`, {hint: 'stop what holds it or pass another --listen'})
  }
  const a = app.server.address()
  const hostPort = a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : o.listen.text
  return {
    url: `http://${hostPort}/`,
    close: async () => {
      web.close()
      await app.close()
    },
  }
}
