// A throwaway PostgreSQL cluster for the tests and benchmarks: initdb on a temp directory, a free port on
// loopback, stopped (and removed) at exit. PostgreSQL refuses to run as root, so as root the cluster is
// made and run by the `postgres` user (runuser), as Debian's packages create it.
//   import {startCluster} from './pg-cluster.js'; const c = await startCluster(); c.url; c.stop()
//   node scripts/pg-cluster.js   starts one and prints its URL until Ctrl-C (for development)
import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** Debian's server binaries (/usr/lib/postgresql/<version>/bin, newest first), then the PATH's usual places. */
function binDirs() {
  /** @type {string[]} */
  let versions = []
  try {
    versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
  } catch {
    // not Debian's layout
  }
  return [...versions.map((v) => `/usr/lib/postgresql/${v}/bin`), '/usr/local/bin', '/usr/bin']
}

/** @param {string} name */
function pgBin(name) {
  for (const d of binDirs()) if (existsSync(join(d, name))) return join(d, name)
  return null
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const {port} = /** @type {import('node:net').AddressInfo} */ (s.address())
      s.close(() => resolve(port))
    })
  })
}

/** Whether this machine can start a cluster (initdb and pg_ctl found). */
export function clusterAvailable() {
  return Boolean(pgBin('initdb') && pgBin('pg_ctl'))
}

/**
 * Start a cluster. `settings` are postgresql.conf settings (the tests turn fsync off: a crash of the test
 * machine loses nothing anyone needs; the benchmarks keep PostgreSQL's defaults).
 */
/**
 * @param {{settings?: Record<string, string | number>}} [options]
 * @returns {Promise<{url: string, port: number, dir: string, socketDir: string, stop: () => void}>}
 */
export async function startCluster({settings = {}} = {}) {
  const initdb = pgBin('initdb')
  const pgCtl = pgBin('pg_ctl')
  if (!initdb || !pgCtl) throw new Error('PostgreSQL is not installed (initdb and pg_ctl not found): apt-get install postgresql')
  const dir = mkdtempSync(join(tmpdir(), 'ductile-pg-'))
  const data = join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  /** @type {(cmd: string, args: string[]) => [string, string[]]} */
  const as = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args])
  if (asRoot) {
    chmodSync(dir, 0o777)
  }
  /** @type {(cmd: string, args: string[]) => void} */
  const run = (cmd, args) => {
    const [c, a] = as(cmd, args)
    const r = spawnSync(c, a, {encoding: 'utf8'})
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`)
  }
  run(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync'])
  const port = await freePort()
  const opts = {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    max_connections: '200',
    ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])),
  }
  const o = Object.entries(opts)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ')
  run(pgCtl, ['-D', data, '-l', join(dir, 'log'), '-o', o, '-w', '-t', '60', 'start'])
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    try {
      const [c, a] = as(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop'])
      execFileSync(c, a, {stdio: 'ignore'})
    } catch {
      // already gone
    }
    if (!process.env.KEEP_TEST_DIRS) rmSync(dir, {recursive: true, force: true})
  }
  process.once('exit', stop)
  return {url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, dir, socketDir: dir, stop}
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const c = await startCluster({settings: {fsync: 'off'}})
  console.log(c.url)
  const end = () => {
    c.stop()
    process.exit(0)
  }
  process.on('SIGINT', end)
  process.on('SIGTERM', end)
  setInterval(() => {}, 1 << 30)
}
