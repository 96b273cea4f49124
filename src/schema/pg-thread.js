// @ts-check
import {parentPort, workerData} from 'node:worker_threads'
import pg from 'pg'

/**
 * The PostgreSQL connection's thread (see postgres.ts, PgBridge, for why there is one). Plain JavaScript,
 * type-checked by tsc through JSDoc, loaded by path from the sources as from dist/ (no TypeScript loader).
 *
 * One request at a time arrives on `port`; its answer is posted back on `port` and then `flag` is set and
 * notified, which wakes the caller blocked in Atomics.wait: it reads the answer with receiveMessageOnPort.
 * Notifications (LISTEN) are heard on a second, dedicated connection and posted to the parent as they come.
 *
 * @typedef {import('./postgres.js').BridgeData} BridgeData
 * @typedef {import('./postgres.js').BridgeRequest} BridgeRequest
 * @typedef {import('./postgres.js').BridgeAnswer} BridgeAnswer
 */

const data = /** @type {BridgeData} */ (workerData)
const port = data.port
const flag = new Int32Array(data.flag)

// Our integers fit in a double (ids, counts, attempts, milliseconds): read as numbers, as better-sqlite3 does.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10))
pg.types.setTypeParser(1700, (v) => Number.parseFloat(v))

/** @param {unknown} err */
function describe(err) {
  const e = /** @type {{message?: string, code?: string, detail?: string, severity?: string}} */ (err ?? {})
  return {message: e.message ?? String(err), code: e.code ?? null, detail: e.detail ?? null}
}

/** @param {BridgeAnswer} answer */
function answer(answer) {
  port.postMessage(answer)
  Atomics.store(flag, 0, 1)
  Atomics.notify(flag, 0)
}

/** @type {Error | null} the connection's own failure (it ended, the server went away) */
let broken = null
/** @type {pg.Client} */
let client = connection()

function connection() {
  const c = new pg.Client({connectionString: data.url, application_name: data.applicationName})
  c.on('error', (err) => {
    broken = err
  })
  return c
}

/**
 * After the connection was lost (a server restart, a terminated backend), a new one, but only where no
 * transaction was under way (a request that starts one, or runs outside one): a transaction in flight fails.
 */
async function reconnect() {
  const old = client
  client = connection()
  old.end().catch(() => {})
  await client.connect()
  for (const s of data.setup) await client.query(s)
  names.clear()
  batchNames.clear()
  broken = null
}

/** @type {pg.Client | null} */
let listener = null
/** @type {Set<string>} */
const channels = new Set()

/** The LISTEN connection, again after a failure, every second until it is back (the engine polls meanwhile). */
async function listen() {
  const l = new pg.Client({connectionString: data.url, application_name: `${data.applicationName} (listen)`})
  l.on('notification', (n) => parentPort?.postMessage({type: 'notify', channel: n.channel, payload: n.payload ?? ''}))
  l.on('error', () => {
    if (listener !== l) return
    listener = null
    l.end().catch(() => {})
    setTimeout(() => listen().catch(() => {}), 1000).unref()
  })
  await l.connect()
  for (const c of channels) await l.query(`LISTEN ${c}`)
  listener = l
  // What was missed while it was away: the engine looks once.
  parentPort?.postMessage({type: 'notify', channel: '', payload: ''})
}
/** @type {Map<string, string>} statement text -> prepared statement name (pg's, by the extended protocol) */
const names = new Map()
/** @type {Map<string, string>} statement text -> prepared statement name (ours, by PREPARE in a batch) */
const batchNames = new Map()

/** @param {BridgeRequest} req */
async function handle(req) {
  if (req.op === 'connect') {
    await client.connect()
    for (const s of data.setup) await client.query(s)
    return {rows: [], rowCount: 0}
  }
  if (req.op === 'listen') {
    channels.add(req.channel)
    if (listener) await listener.query(`LISTEN ${req.channel}`)
    else await listen()
    return {rows: [], rowCount: 0}
  }
  if (broken) {
    if (!('fresh' in req) || !req.fresh) throw broken
    await reconnect()
  }
  if (req.op === 'exec') {
    await client.query(req.text)
    return {rows: [], rowCount: 0}
  }
  if (req.op === 'batch') {
    // One simple query: several statements, one round trip. A statement with values runs as EXECUTE of a
    // statement prepared once per connection, its values as literals escaped by pg: parsed and planned once,
    // as the extended protocol's named statements are. A statement is prepared on its own the first time
    // (PREPARE is not undone by a rollback, and one in the batch would not run after a failed statement):
    // its name is kept only once the server has it.
    const parts = []
    for (const i of req.items) {
      if (i.values.length === 0) {
        parts.push(i.text)
        continue
      }
      let name = batchNames.get(i.text)
      if (!name) {
        name = `b${batchNames.size + 1}`
        await client.query(`PREPARE ${name} AS ${i.text}`)
        batchNames.set(i.text, name)
      }
      parts.push(`EXECUTE ${name}(${i.values.map(literal).join(', ')})`)
    }
    const r = await client.query(parts.join(';\n'))
    const last = Array.isArray(r) ? r[r.length - 1] : r
    return {rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0}
  }
  if (req.op !== 'query') throw new Error(`unknown request ${req.op}`)
  // Statements run more than once are prepared once per connection (parse and plan saved).
  let name
  if (req.prepare) {
    name = names.get(req.text)
    if (!name) {
      name = `d${names.size + 1}`
      names.set(req.text, name)
    }
  }
  const r = await client.query({text: req.text, values: req.values, name})
  return {rows: r.rows, rowCount: r.rowCount ?? 0}
}

/** @param {unknown} v */
function literal(v) {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot send ${v} to PostgreSQL`)
    return String(v)
  }
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return client.escapeLiteral(`{${v.map((x) => `"${String(x).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`)
  if (typeof v === 'object') return client.escapeLiteral(JSON.stringify(v))
  return client.escapeLiteral(String(v))
}

port.on('message', (/** @type {BridgeRequest} */ req) => {
  if (req.op === 'close') {
    Promise.allSettled([client.end(), listener?.end()]).finally(() => answer({rows: [], rowCount: 0}))
    return
  }
  // An answer that cannot be posted (a value the structured clone refuses) is answered as an error: the
  // caller waits for an answer, never for nothing.
  handle(req)
    .then((r) => answer(r))
    .catch((err) => answer({error: describe(err)}))
})
