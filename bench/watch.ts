/** Overwatch refresh: the database time of one `ductile watch` frame on the 1M-row database (goal <= 5 ms). */
import {readOverview} from '../src/queries/overview.js'
import {openDb} from '../src/schema/db.js'
import {median} from './read.js'
import type {Section} from './run.js'

const section: Section = ({dbPath}) => {
  console.log('\n## Overwatch: one refresh (median of 51)')
  const db = openDb(dbPath, {mode: 'read'})
  for (const [label, filter] of [
    ['watch', {}],
    ['watch --plugin plugin-07', {plugin: 'plugin-07'}],
    ['watch --status failed', {status: 'failed'}],
  ] as const) {
    readOverview(db, filter)
    const times: number[] = []
    for (let i = 0; i < 51; i++) {
      const t = process.hrtime.bigint()
      readOverview(db, {...filter, latest: 10})
      times.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    const m = median(times)
    console.log(`${m <= 5 ? 'ok  ' : 'MISS'}  ${label.padEnd(44)} ${`${m.toFixed(2)} ms`.padStart(14)}   goal <= 5 ms`)
  }
  db.close()
}

export default section
