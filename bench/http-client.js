// The HTTP load of bench/http.ts, in its own process as a real client would be: `connections` keep-alive
// connections, each posting POST /plugin/echo-sh/poll back to back for `seconds`. Prints one JSON line:
// accepted count, errors, latency percentiles; writes the accepted job ids to `idsFile`.
import {writeFileSync} from 'node:fs'
import {Agent, request} from 'node:http'

const [url, token, connections, seconds, idsFile, rate] = process.argv.slice(2)
// With a rate: requests are offered at that many a second in all (an open schedule), else as fast as answered.
const perSecond = Number(rate ?? 0)
const target = new URL(url)
const agent = new Agent({keepAlive: true, maxSockets: Number(connections)})
const ids = []
const latencies = []
let errors = 0
const end = performance.now() + Number(seconds) * 1000

function post() {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const req = request(
      {agent, hostname: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: {authorization: `Bearer ${token}`}},
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => {
          latencies.push(performance.now() - t0)
          if (res.statusCode === 202) ids.push(JSON.parse(body).job_id)
          else errors++
          resolve()
        })
      },
    )
    req.on('error', () => {
      errors++
      resolve()
    })
    req.end()
  })
}

const start = performance.now()
let issued = 0
await Promise.all(
  Array.from({length: Number(connections)}, async () => {
    while (performance.now() < end) {
      if (perSecond > 0) {
        const due = start + (issued++ * 1000) / perSecond
        const wait = due - performance.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
      await post()
    }
  }),
)
agent.destroy()
latencies.sort((a, b) => a - b)
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? Number.NaN
writeFileSync(idsFile, ids.join('\n'))
console.log(JSON.stringify({accepted: ids.length, errors, seconds: Number(seconds), p50: pct(50), p99: pct(99), max: latencies.at(-1)}))
