import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {enqueue, rows, startedEngine, testEnv, waitFor, waitTerminal} from '../helpers/engine.js'

const SECRETS = ['AKIAEXAMPLEKEY1', 'sign-me-please-42', 'tok-alpha-111', 'tok-beta-222', 'bearer-xyz-333', 'dsn-pass-444', 'from-the-env-555', 'smtp-pass-666']
const ORDINARY = ['Hobart', 'https://hooks.example/path', 'db.example', 'keep-me-visible']

/** Issue 13.8: every configured secret is absent from every output and row; ordinary values stay readable. */
describe('trust: secrets never leave the engine', () => {
  it('by key name, in lists, nested, inside URLs and by ${VAR} origin: absent from the log, config check, snapshots, job_log, job_queue and jobs inspect', {
    timeout: 60_000,
  }, async () => {
    const env = testEnv(`environment_vars:
  include: [secrets.env]
plugins:
  behave:
    retry: {max_attempts: 1}
    notify_on_complete: true
    config:
      aws_access_key_id: AKIAEXAMPLEKEY1
      signing_key: sign-me-please-42
      tokens: [tok-alpha-111, tok-beta-222]
      auth: {bearer: bearer-xyz-333}
      database_url: mysql://app:dsn-pass-444@db.example:3306/app
      from_env: \${MY_SERVICE_TOKEN}
      webhook: https://hooks.example/path
      city: Hobart
      smtp_pass: smtp-pass-666
      passthrough_note: keep-me-visible
  listener: {uses: pipe-step}
pipelines:
  - {name: on-fail, on-hook: job.failed, steps: [{id: l, uses: listener}]}
`)
    writeFileSync(join(env.dir, 'secrets.env'), 'MY_SERVICE_TOKEN=from-the-env-555\n')
    const check = await runCli(['config', 'check', '--config', env.configPath, '--json'])
    const engine = await startedEngine(env.configPath)
    let log: string
    try {
      const id = enqueue(env, 'behave', {mode: 'leak'})
      await waitTerminal(env, id)
      // The hook job carries the failed job's error into its payload, context and its plugin's request.
      const hook = await waitFor(
        'the hook job to finish',
        () => rows(env.db, `SELECT * FROM job_queue WHERE submitted_by = 'hook' AND status = 'succeeded'`)[0],
      )
      assert.match(hook.payload, /leaked/)
      const inspect = await runCli(['jobs', 'inspect', id, '--db', env.dbPath])
      const inspectJson = await runCli(['jobs', 'inspect', id, '--db', env.dbPath, '--json'])
      engine.child.kill('SIGTERM')
      await engine.exited
      log = engine.err()
      const places: Record<string, string> = {
        'engine log': log,
        'config check --json': check.stdout,
        config_snapshots: JSON.stringify(rows(env.db, 'SELECT * FROM config_snapshots')),
        job_log: JSON.stringify(rows(env.db, 'SELECT * FROM job_log')),
        job_queue: JSON.stringify(rows(env.db, 'SELECT * FROM job_queue')),
        event_context: JSON.stringify(rows(env.db, 'SELECT * FROM event_context')),
        'jobs inspect': inspect.stdout,
        'jobs inspect --json': inspectJson.stdout,
      }
      assert.match(log, /plugin: /, 'the plugin log line reached the engine log')
      assert.match(places.job_log, /leaked/)
      for (const [where, text] of Object.entries(places)) {
        for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} is in ${where}`)
      }
      for (const value of ORDINARY) assert.ok(check.stdout.includes(value), `${value} should stay readable in config check --json`)
      assert.match(check.stdout, /mysql:\/\/app:\*\*\*@db\.example/)
    } finally {
      if (engine.child.exitCode === null) engine.child.kill('SIGKILL')
    }
  })
})
