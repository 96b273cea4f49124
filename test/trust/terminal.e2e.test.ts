import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import chalk from 'chalk'

import {printable} from '../../src/cli/render.js'
import {runCli} from '../helpers/cli.js'
import {freshDb} from '../helpers/db.js'
import {insertAttempt, insertJob, insertLog, insertTransition} from '../helpers/fixtures.js'

const HOSTILE = 'boom\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x9bdone'

/** Issue 13.7: plugin text never reaches the terminal raw; --json keeps it exact. */
describe('trust: control characters from plugins are shown escaped', () => {
  it('jobs errors, list, logs, inspect and watch --once escape them; --json keeps the exact text', async () => {
    const {db, path} = freshDb()
    const job = insertJob(db, {
      plugin: 'evil',
      status: 'failed',
      last_error: HOSTILE,
      completed_at: '2026-11-30 10:00:00.000',
      started_at: '2026-11-30 09:59:59.000',
    })
    insertTransition(db, {job_id: job.id, from_status: null, to_status: 'queued'})
    insertAttempt(db, {job_id: job.id})
    insertLog(db, {
      id: `${job.id}-1`,
      job_id: job.id,
      plugin: 'evil',
      status: 'failed',
      attempt: 1,
      last_error: HOSTILE,
      stderr: HOSTILE,
      completed_at: '2026-11-30 10:00:00.000',
    })
    db.close()
    for (const args of [
      ['jobs', 'errors'],
      ['jobs', 'list'],
      ['jobs', 'logs'],
      ['jobs', 'inspect', job.id],
      ['watch', '--once'],
    ]) {
      const r = await runCli([...args, '--db', path])
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
      assert.doesNotMatch(r.stdout, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, `${args.join(' ')} printed a control character`)
      if (args[1] !== 'list') assert.match(r.stdout, /boom\\x1b\]0;pwned\\x07\\x1b\[2J/, args.join(' '))
      const j = await runCli([...args, '--db', path, '--json'])
      assert.ok(j.stdout.includes(JSON.stringify(HOSTILE).slice(1, -1)), `${args.join(' ')} --json lost the exact text`)
    }
  })

  it('printable keeps only our own colour codes when colour is on', () => {
    const level = chalk.level
    try {
      chalk.level = 1
      const ours = chalk.red('x')
      assert.equal(printable(`${ours}\x1b[8mhidden\x1b]0;t\x07`), `${ours}\\x1b[8mhidden\\x1b]0;t\\x07`)
      chalk.level = 0
      assert.equal(printable('\x1b[31mx'), '\\x1b[31mx')
      assert.equal(printable('line 1\n\tline 2'), 'line 1\n\tline 2')
    } finally {
      chalk.level = level
    }
  })
})
