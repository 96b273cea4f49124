/**
 * Web Overwatch (issue 18): the server time of each page on the 1M-row database (goal <= 100 ms), read from
 * the Server-Timing header the pages send, median of 21 after one warm-up. The keyset pages are measured
 * near the newest rows and deep in the oldest ones; free text over errors with a common and a rare term.
 */
import {openDb} from '../src/schema/db.js'
import {startWeb} from '../src/web/server.js'
import {median} from './read.js'
import type {Section} from './run.js'
import {line} from './util.js'

async function serverTime(url: string): Promise<{ms: number; status: number}> {
  const r = await fetch(url)
  await r.arrayBuffer()
  const m = /app;dur=([\d.]+)/.exec(r.headers.get('server-timing') ?? '')
  return {ms: m ? Number(m[1]) : Number.NaN, status: r.status}
}

const section: Section = async ({dbPath}) => {
  console.log('\n## Web Overwatch: server time of each page on the 1M-row database (median of 21, Server-Timing)')
  const db = openDb(dbPath, {mode: 'read'})
  const web = await startWeb({
    listen: {host: '127.0.0.1', port: 0, text: 'bench'},
    deps: {db, writer: null, config: null, registry: null, tokens: [], openRead: true, wake: () => {}},
  })
  try {
    const job = db.query(`SELECT id FROM job_queue WHERE status = 'failed' ORDER BY created_at DESC LIMIT 1`)[0]?.id as string
    const deep = db.query('SELECT completed_at, id FROM job_log ORDER BY completed_at, id LIMIT 1 OFFSET 500')[0] as {completed_at: string; id: string}
    const deepCursor = Buffer.from(`${deep.completed_at}|${deep.id}`).toString('base64url')
    const first = await (await fetch(`${web.url}jobs`)).text()
    const next = /[?&]before=([\w-]+)/.exec(first)?.[1] ?? ''
    const pages: [string, string][] = [
      ['overview /', ''],
      ['jobs /jobs', 'jobs'],
      ['jobs, next page (keyset)', `jobs?before=${next}`],
      ['jobs, a page among the oldest (keyset)', `jobs?before=${deepCursor}`],
      ['jobs ?status=failed&plugin=plugin-07', 'jobs?status=failed&plugin=plugin-07'],
      [
        'jobs ?from=…&to=… (one hour)',
        `jobs?from=${encodeURIComponent(deep.completed_at.slice(0, 13))}:00&to=${encodeURIComponent(deep.completed_at.slice(0, 13))}:59`,
      ],
      ['jobs ?q=HTTP 502 (free text, common)', `jobs?q=${encodeURIComponent('HTTP 502')}`],
      ['jobs ?q=… (free text, rare: no match)', `jobs?q=${encodeURIComponent('certificate expired')}`],
      ['job /jobs/ID', `jobs/${job}`],
      ['plugins /plugins', 'plugins'],
      ['plugin /plugins/plugin-07', 'plugins/plugin-07'],
      ['breakers /breakers', 'breakers'],
      ['schedules /schedules', 'schedules'],
    ]
    for (const [label, path] of pages) {
      const url = `${web.url}${path}`
      const warm = await serverTime(url)
      if (warm.status !== 200) throw new Error(`web bench: ${path} answered ${warm.status}`)
      const times: number[] = []
      for (let i = 0; i < 21; i++) times.push((await serverTime(url)).ms)
      const m = median(times)
      line(label, `${m.toFixed(1)} ms`, '<= 100 ms', m <= 100)
    }
  } finally {
    await web.close()
    db.close()
  }
}

export default section
