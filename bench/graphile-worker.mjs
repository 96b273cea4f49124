// One graphile-worker process for bench/postgres.ts: a no-op task, concurrency 1 (as each of our engines in
// that bench runs one job at a time). Prints "ready" once it runs.
//   node bench/graphile-worker.mjs URL
import {run} from 'graphile-worker'

const runner = await run({
  connectionString: process.argv[2],
  concurrency: 1,
  noHandleSignals: false,
  pollInterval: 1000,
  logger: undefined,
  taskList: {noop: async () => {}},
})
process.stdout.write('ready\n')
await runner.promise
