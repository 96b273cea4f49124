import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, cpSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {openDb} from '../../src/schema/db.js'
import {initSchema} from '../../src/schema/migrations.js'
import {BIN, ROOT, runCli} from '../helpers/cli.js'
import {freshDb, tempDir} from '../helpers/db.js'
import {FIXTURE_PLUGINS, enqueue, rows, startEngine, testEnv, waitTerminal} from '../helpers/engine.js'
import {insertBreaker, insertJob, insertLog} from '../helpers/fixtures.js'
import {lite} from '../helpers/store.js'

/**
 * The bad-input catalogue: each case is a test with its message and exit code, and nothing is lost.
 */

/** A config with its own plugin root (fixture plugins copied, so manifests can be broken per test). */
function configWith(body: string, opts: {plugins?: (root: string) => void; extraFiles?: Record<string, string>} = {}) {
  const dir = tempDir('ductile-bad-')
  const root = join(dir, 'plugins')
  mkdirSync(root)
  cpSync(join(FIXTURE_PLUGINS, 'echo-sh'), join(root, 'echo-sh'), {recursive: true})
  opts.plugins?.(root)
  for (const [name, text] of Object.entries(opts.extraFiles ?? {})) writeFileSync(join(dir, name), text)
  const configPath = join(dir, 'config.yaml')
  writeFileSync(configPath, `state:\n  path: ./d.db\nplugin_roots:\n  - ./plugins\n${body}`)
  return {dir, root, configPath}
}

async function configCheck(body: string, opts?: Parameters<typeof configWith>[1]) {
  const c = configWith(body, opts)
  const r = await runCli(['config', 'check', '--config', c.configPath])
  return {...r, ...c}
}

function manifest(
  root: string,
  name: string,
  fields: string,
  entry = 'run.sh',
  script = '#!/bin/sh\ncat >/dev/null; echo \'{"status":"ok","result":"x"}\'\n',
  mode = 0o755,
) {
  const d = join(root, name)
  mkdirSync(d, {recursive: true})
  writeFileSync(join(d, 'manifest.yaml'), fields)
  writeFileSync(join(d, entry), script)
  chmodSync(join(d, entry), mode)
  return d
}

const GOOD = (name: string, extra = '') =>
  `manifest_spec: ductile.plugin\nmanifest_version: 1\nname: ${name}\nversion: 1.0.0\nprotocol: 2\nentrypoint: run.sh\ncommands:\n  - {name: poll, type: read}\n${extra}`

describe('bad input: config', () => {
  it('invalid YAML names line and column (exit 2)', async () => {
    const r = await configCheck('plugins:\n  echo-sh:\n    config: {a: 1\n  b: [\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /config\.yaml: line \d+, column \d+: invalid YAML/)
    assert.doesNotMatch(r.stdout, /plugin_roots is required/, 'no knock-on errors from a file that did not parse')
  })
  it('an unknown plugin in a pipeline', async () => {
    const r = await configCheck('pipelines:\n  - {name: p, on: x, steps: [{id: a, uses: ghost}]}\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /pipelines\[p\]\.steps\[a\]\.uses: unknown plugin ghost/)
  })
  it('duplicate schedule ids', async () => {
    const r = await configCheck('plugins:\n  echo-sh:\n    schedules:\n      - {every: 1m}\n      - {every: 2m}\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /schedules\[1\]\.id: duplicate schedule id "default"/)
  })
  it('a bad duration', async () => {
    const r = await configCheck('service:\n  tick_interval: 5 minutes\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /service\.tick_interval: invalid duration "5 minutes"/)
  })
  it('a bad cron (config check fails; the engine would keep that schedule paused_invalid)', async () => {
    const r = await configCheck('plugins:\n  echo-sh:\n    schedules:\n      - {cron: "61 * * * *"}\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /schedules\[0\]\.cron: .*minute/i)
  })
  it('a bad time zone', async () => {
    const r = await configCheck('plugins:\n  echo-sh:\n    schedules:\n      - {every: 1h, timezone: Mars/Olympus}\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /unknown time zone "Mars\/Olympus"/)
  })
  it('${VAR} unset names the variable and line', async () => {
    const r = await configCheck('plugins:\n  echo-sh:\n    config: {token: "${DUCTILE_SURELY_UNSET_VAR}"}\n')
    assert.equal(r.code, 2)
    assert.match(r.stdout, /line 7: \$\{DUCTILE_SURELY_UNSET_VAR\} is not set/)
  })
  it('an include loop', async () => {
    const r = await configCheck('include: [a.yaml]\n', {extraFiles: {'a.yaml': 'include: [b.yaml]\n', 'b.yaml': 'include: [a.yaml]\n'}})
    assert.equal(r.code, 2)
    assert.match(r.stdout, /include loop: config\.yaml → a\.yaml → b\.yaml → a\.yaml/)
  })
  it('a missing config file (exit 2)', async () => {
    const r = await runCli(['config', 'check', '--config', join(tempDir(), 'nope.yaml')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /config .*nope\.yaml does not exist/)
  })
})

describe('bad input: manifests (the plugin is refused, the others still load)', () => {
  const refused = async (setup: (root: string) => void, pattern: RegExp) => {
    const r = await configCheck('', {plugins: setup})
    assert.equal(r.code, 2, r.stdout)
    assert.match(r.stdout, pattern)
    const list = await runCli(['plugins', 'list', '--config', r.configPath, '--json'])
    assert.ok(
      list.json().plugins.some((p: {name: string}) => p.name === 'echo-sh'),
      'the good plugin still loads',
    )
  }
  it('missing fields', () =>
    refused(
      (root) => manifest(root, 'bad', 'manifest_spec: ductile.plugin\nmanifest_version: 1\nprotocol: 2\nentrypoint: run.sh\n'),
      /bad\/manifest\.yaml: name: is required[\s\S]*bad\/manifest\.yaml: commands: is required/,
    ))
  it('the wrong protocol', () =>
    refused((root) => manifest(root, 'old', GOOD('old').replace('protocol: 2', 'protocol: 1')), /old\/manifest\.yaml: protocol: must be 2 \(got 1\)/))
  it('an entrypoint outside the plugin directory', () =>
    refused(
      (root) => manifest(root, 'escape', GOOD('escape').replace('entrypoint: run.sh', 'entrypoint: ../echo-sh/run.sh')),
      /entrypoint: must be a path inside the plugin directory without "\.\."/,
    ))
  it('an entrypoint that is a symlink leading outside', () =>
    refused((root) => {
      const d = manifest(root, 'linked', GOOD('linked').replace('entrypoint: run.sh', 'entrypoint: link.sh'))
      symlinkSync(join(root, 'echo-sh', 'run.sh'), join(d, 'link.sh'))
    }, /link\.sh is a symlink/))
  it('an entrypoint that is not executable', () =>
    refused((root) => manifest(root, 'noexec', GOOD('noexec'), 'run.sh', '#!/bin/sh\n', 0o644), /run\.sh is not executable \(chmod \+x it\)/))
  it('a world-writable plugin directory', () =>
    refused((root) => {
      const d = manifest(root, 'open', GOOD('open'))
      chmodSync(d, 0o777)
    }, /plugin directory .*open is world-writable/))
  it('commands as a map, and a command without a type', () =>
    refused((root) => {
      manifest(root, 'mapped', GOOD('mapped').replace('commands:\n  - {name: poll, type: read}\n', 'commands:\n  poll: {type: read}\n'))
      manifest(root, 'untyped', GOOD('untyped').replace('{name: poll, type: read}', '{name: poll}'))
    }, /mapped\/manifest\.yaml: commands: is required: a list[\s\S]*untyped\/manifest\.yaml: commands\[0\]\.type: is required: read or write/))
})

describe('bad input: payloads (exit 2, nothing enqueued)', () => {
  const env = () => testEnv('plugins:\n  behave: {}\n')
  const none = (e: ReturnType<typeof env>) => assert.equal(rows(e.db, 'SELECT COUNT(*) AS n FROM job_queue')[0].n, 0)
  it('not JSON', async () => {
    const e = env()
    const r = await runCli(['jobs', 'enqueue', 'behave', '--payload', "{'mode': 'ok'}", '--config', e.configPath])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--payload is not valid JSON/)
    none(e)
  })
  it('JSON but not an object', async () => {
    const e = env()
    const r = await runCli(['jobs', 'enqueue', 'behave', '--payload', '"ok"', '--config', e.configPath])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /must be a JSON object, not string/)
    none(e)
  })
  it('a 10 MiB payload', async () => {
    const e = env()
    const f = join(e.dir, 'big.json')
    writeFileSync(f, JSON.stringify({x: 'y'.repeat(10 * 1024 * 1024)}))
    const r = await runCli(['jobs', 'enqueue', 'behave', '--payload-file', f, '--config', e.configPath, '--json'])
    assert.equal(r.code, 2)
    assert.match(r.json().error.message, /10\.0 MiB; the limit is 1 MiB/)
    none(e)
  })
  it('a payload file that does not exist', async () => {
    const e = env()
    const r = await runCli(['jobs', 'enqueue', 'behave', '--payload-file', join(e.dir, 'nope.json'), '--config', e.configPath])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /cannot read .*nope\.json/)
    none(e)
  })
})

describe('bad input: plugin output (the job records it; the engine goes on)', () => {
  for (const [mode, status, pattern] of [
    ['binary', 'failed', /plugin output is not valid JSON/],
    ['bad_utf8_stderr', 'succeeded', null],
    ['two_docs', 'failed', /not valid JSON/],
    ['array', 'failed', /response is not a JSON object \(got an array\)/],
    ['huge', 'failed', /stdout exceeded 10485760 bytes/],
  ] as const) {
    it(`${mode}: ${status}`, async () => {
      const e = testEnv('plugins:\n  behave: {}\n')
      const engine = await startEngine(e)
      try {
        const id = enqueue(e, 'behave', {mode})
        const after = enqueue(e, 'echo-sh', {})
        const j = await waitTerminal(e, id, 30_000)
        assert.equal(j.status, status)
        if (pattern) assert.match(j.last_error, pattern)
        assert.equal((await waitTerminal(e, after)).status, 'succeeded', 'the engine keeps working')
        if (mode === 'bad_utf8_stderr') assert.match(rows(e.db, 'SELECT stderr FROM job_log WHERE job_id = ?', id)[0].stderr, /caf\uFFFD/)
        if (mode === 'huge') assert.equal(Buffer.byteLength(rows(e.db, 'SELECT result FROM job_log WHERE job_id = ?', id)[0].result), 65_536)
      } finally {
        await engine.stop()
      }
    })
  }
})

// Root ignores file modes, so these cases run the CLI as nobody — when nobody can read the checkout
// (CI may clone somewhere private).
const asNobody =
  process.getuid?.() === 0 &&
  spawnSync(
    'setpriv',
    [
      '--reuid=nobody',
      '--regid=nogroup',
      '--clear-groups',
      process.execPath,
      '-e',
      `require(${JSON.stringify(BIN)}.replace('bin/run.js', 'node_modules/better-sqlite3'))`,
    ],
    {cwd: ROOT},
  ).status === 0
/** Run the CLI as an unprivileged user (root ignores file modes). */
function cliAs(args: string[]) {
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1', NODE_ENV: '', HOME: '/tmp'},
  })
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}
/** A database in a world-readable directory (the test temp dirs are private to root). */
function sharedDb() {
  const dir = join(tempDir(), 'shared')
  mkdirSync(dir)
  chmodSync(dir, 0o755)
  chmodSync(join(dir, '..'), 0o755)
  const path = join(dir, 'd.db')
  const db = freshDbAt(path)
  insertJob(db, {status: 'queued'})
  // A breaker to reset: the write commands of these tests really write.
  insertBreaker(db, {plugin: 'x', command: 'poll', state: 'open'})
  db.sqlite.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return {dir, path}
}
function freshDbAt(path: string) {
  const db = openDb(path, {mode: 'create'})
  initSchema(db)
  return db
}

describe('bad input: the database', () => {
  it('missing: exit 1, nothing created', async () => {
    const p = join(tempDir(), 'none.db')
    const r = await runCli(['breakers', 'list', '--db', p])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /does not exist/)
    assert.throws(() => statSync(p))
  })
  it('not SQLite: exit 1 naming the file', async () => {
    const p = join(tempDir(), 'x.db')
    writeFileSync(p, Buffer.alloc(8192, 7))
    const r = await runCli(['facts', 'a', '--db', p])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /x\.db is not a SQLite database/)
  })
  it('truncated: reads fail clearly and doctor reports it', async () => {
    const {db, path} = freshDb()
    db.tx(() => {
      for (let i = 0; i < 2000; i++) insertLog(db, {result: 'z'.repeat(400)})
    })
    lite(db).sqlite.pragma('wal_checkpoint(TRUNCATE)')
    db.close()
    truncateSync(path, Math.floor(statSync(path).size / 3))
    const r = await runCli(['jobs', 'logs', '--db', path, '--limit', '1000'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Error \(db_(corrupt|error)\)/)
    const d = await runCli(['doctor', '--db', path, '--json'])
    assert.equal(d.code, 1)
    assert.equal(d.json().healthy, false)
  })
  it('read-only file: reads work, writes fail with exit 1 and say what to check', {
    skip: !asNobody && 'needs root, setpriv, and a checkout that nobody can read',
  }, () => {
    const {dir, path} = sharedDb()
    chmodSync(path, 0o444)
    // The directory stays writable: SQLite needs to create the -shm file to read a WAL database.
    chmodSync(dir, 0o777)
    const read = cliAs(['jobs', 'status', '--db', path, '--json'])
    assert.equal(read.code, 0, read.stderr)
    const write = cliAs(['breakers', 'reset', 'x', '--db', path])
    assert.equal(write.code, 1)
    assert.match(write.stderr, /Error \(db_(readonly|error)\)/)
    assert.match(write.stderr, /permissions/)
  })
  it('read-only directory: writes fail with exit 1 naming the directory problem; nothing lost', {
    skip: !asNobody && 'needs root, setpriv, and a checkout that nobody can read',
  }, () => {
    const {dir, path} = sharedDb()
    chmodSync(path, 0o666)
    chmodSync(dir, 0o555)
    const write = cliAs(['breakers', 'reset', 'x', '--db', path])
    assert.equal(write.code, 1)
    assert.match(write.stderr, /directory/)
    chmodSync(dir, 0o755)
    const check = openDb(path, {mode: 'read'})
    assert.equal(check.sqlite.prepare('SELECT COUNT(*) FROM job_queue').pluck().get(), 1)
    check.close()
  })
  it('read-only file in a read-only directory: read commands work; writes fail saying what to check', {
    skip: !asNobody && 'needs root, setpriv, and a checkout that nobody can read',
  }, () => {
    const {dir, path} = sharedDb()
    chmodSync(path, 0o444)
    chmodSync(dir, 0o555)
    try {
      for (const args of [
        ['jobs', 'status'],
        ['jobs', 'list'],
        ['doctor', '--engine-optional'],
        ['db', 'info'],
        ['watch', '--once'],
      ]) {
        const read = cliAs([...args, '--db', path, '--json'])
        assert.ok(read.code === 0 || (args[0] === 'doctor' && read.code === 1), `${args.join(' ')}: ${read.stderr}`)
        assert.doesNotMatch(read.stdout + read.stderr, /cannot be written|unable to open/, args.join(' '))
      }
      assert.equal(cliAs(['jobs', 'status', '--db', path, '--json']).stdout.includes('"queued"'), true)
      const write = cliAs(['breakers', 'reset', 'x', '--db', path])
      assert.equal(write.code, 1)
    } finally {
      chmodSync(dir, 0o755)
    }
  })
  it('disk full (a file-size limit): a backup fails clearly, removes its partial copy, the source is intact', () => {
    const {db, path, dir} = freshDb()
    db.tx(() => {
      for (let i = 0; i < 3000; i++) insertLog(db, {result: 'q'.repeat(500)})
    })
    db.close()
    const to = join(dir, 'copy.db')
    const r = spawnSync('sh', ['-c', `trap '' XFSZ; ulimit -f 256; exec "${process.execPath}" "${BIN}" db backup --to "${to}" --db "${path}"`], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {...process.env, NODE_ENV: ''},
    })
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /Error \(db_(full|error)\)/)
    assert.throws(() => statSync(to), 'no partial copy left')
    const check = openDb(path, {mode: 'read'})
    assert.equal(check.sqlite.prepare('SELECT COUNT(*) FROM job_log').pluck().get(), 3000)
    check.close()
  })
})

describe('security', () => {
  it('secrets in config never appear in job_log, engine logs or config --json output', async () => {
    const env = testEnv('plugins:\n  behave:\n    config: {api_token: s3cr3t-t0ken-value, region: eu}\n')
    const engine = await startEngine(env)
    try {
      const id = enqueue(env, 'behave', {mode: 'echo_request'})
      await waitTerminal(env, id)
      const log = rows(env.db, 'SELECT result, stderr FROM job_log WHERE job_id = ?', id)[0]
      assert.doesNotMatch(log.result, /s3cr3t/)
      assert.equal(JSON.parse(log.result).result.config.api_token, '***')
      assert.equal(JSON.parse(log.result).result.config.region, 'eu')
      assert.ok(!env.logs.join('\n').includes('s3cr3t'))
    } finally {
      await engine.stop()
    }
    const check = await runCli(['config', 'check', '--config', env.configPath, '--json'])
    assert.doesNotMatch(check.stdout, /s3cr3t/)
  })

  it('files are private: database, WAL and SHM 0600, directory 0700', async () => {
    const dir = join(tempDir(), 'state')
    const env = testEnv('')
    writeFileSync(env.configPath, readFileSync(env.configPath, 'utf8').replace('path: ./ductile.db', `path: ${join(dir, 'fresh.db')}`))
    const engine = await startEngine({...env, dbPath: join(dir, 'fresh.db')})
    try {
      for (const f of ['fresh.db', 'fresh.db-wal', 'fresh.db-shm']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f)
      assert.equal(statSync(dir).mode & 0o777, 0o700)
    } finally {
      await engine.stop()
    }
  })

  it('hostile plugin names and payloads only ever reach SQL as bound parameters', async () => {
    const env = testEnv('plugins:\n  behave: {}\n')
    const hostile = `x'; DROP TABLE job_queue; --`
    const cfg = ['--config', env.configPath]
    const enq = await runCli(['jobs', 'enqueue', hostile, ...cfg])
    assert.equal(enq.code, 2)
    for (const args of [
      ['jobs', 'status', '--plugin', hostile],
      ['jobs', 'logs', '--plugin', `' OR '1'='1`, '--query', `%' OR 1=1 --`],
      ['facts', `'; DROP TABLE plugin_facts; --`],
      ['state', `" OR ""="`],
      ['breakers', 'history', hostile, '--command', `'); DELETE FROM circuit_breakers; --`],
      ['jobs', 'inspect', `1' OR '1'='1`],
    ]) {
      const r = await runCli([...args, '--db', env.dbPath, '--json'])
      assert.ok(r.code === 0 || r.json().error.code === 'not_found', `${args.join(' ')}: ${r.stderr}`)
    }
    const payload = JSON.stringify({mode: 'ok', note: `'); DROP TABLE job_log; --`, q: '" OR 1=1'})
    const ok = await runCli(['jobs', 'enqueue', 'behave', '--payload', payload, ...cfg])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(rows(env.db, 'SELECT payload FROM job_queue WHERE id = ?', ok.stdout.trim())[0].payload, payload, 'stored verbatim')
    for (const t of ['job_queue', 'job_log', 'plugin_facts', 'circuit_breakers'])
      assert.equal(rows(env.db, `SELECT COUNT(*) AS n FROM sqlite_master WHERE name = ?`, t)[0].n, 1, `${t} still there`)
  })
})
