import {Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../cli/base.js'
import {durationFlag} from '../cli/flags.js'
import {describeError} from '../cli/base.js'
import {type Check, diskSpaceCheck, listenCheck, longestTimeout, runChecks} from '../cli/doctor.js'
import {openStore} from '../schema/open.js'
import {displayTarget, isPgUrl} from '../schema/pg-url.js'

export interface DoctorResult {
  path: string
  healthy: boolean
  checks: Check[]
  /** Checks not run: quick_check without --integrity. */
  skipped: string[]
}

const ICON: Record<Check['status'], (s: string) => string> = {ok: chalk.green, warn: chalk.yellow, fail: chalk.red}

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Health in one page: a verdict per check; exit 1 when any check fails (for monitoring)'
  static override description =
    `Checks: schema current, journal_mode=wal, synchronous=NORMAL, WAL size against the limit, freelist ratio, jobs running longer than the longest plugin timeout, breakers not closed, schedules overdue by more than their interval, engine lock present and its PID alive, finished queue rows past retention (prune not running); with --integrity also PRAGMA quick_check, which reads the whole file (about a second per GB: nightly rather than every few minutes). Read-only.`
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --integrity',
    '<%= config.bin %> doctor --json',
    '<%= config.bin %> doctor --engine-optional --max-freelist 0.5',
  ]

  static override flags = {
    'stuck-after': durationFlag({description: 'running longer than this is stuck (default: the longest plugin timeout in the config + 5 s, else 125 s)'}),
    'max-wal': Flags.integer({description: 'WAL size limit in MiB', default: 64, min: 1}),
    'max-freelist': Flags.string({description: 'free-page ratio above which vacuum is due', default: '0.25'}),
    'engine-optional': Flags.boolean({description: 'no running engine is a warning, not a failure'}),
    'min-free': Flags.integer({description: "free space on the database's volume below this many MiB fails", default: 256, min: 0}),
    integrity: Flags.boolean({description: 'also run PRAGMA quick_check: reads every page of the file, about a second per GB'}),
    'claim-after': durationFlag({description: 'due queued work older than this with no claim as recent fails (default: the tick interval, at least 60 s)'}),
  }

  async run(): Promise<DoctorResult> {
    const target = this.dbPath()
    // What the output names: a URL without its password.
    const path = displayTarget(target)
    const ratio = Number(this.flags['max-freelist'])
    let checks: Check[]
    try {
      const db = openStore(target, {mode: 'read'})
      try {
        const cfg = await this.optionalConfig()
        checks = runChecks(db, {
          stuckAfterMs: this.flags['stuck-after'] ?? longestTimeout(cfg),
          minFreeBytes: this.flags['min-free'] * 1048576,
          claimAfterMs: this.flags['claim-after'] ?? Math.max(60_000, cfg?.service.tick_interval_ms ?? 0),
          maxWalBytes: this.flags['max-wal'] * 1048576,
          maxFreelistRatio: Number.isFinite(ratio) ? ratio : 0.25,
          engineOptional: this.flags['engine-optional'],
          integrity: this.flags.integrity,
          engineLeaseMs: cfg?.service.engine_lease_ms,
          tickMs: cfg?.service.tick_interval_ms,
        })
        const listen = cfg ? listenCheck(cfg) : null
        if (listen) checks.push(listen)
      } finally {
        db.close()
      }
    } catch (err) {
      const e = describeError(err)
      checks = [{name: 'open', status: 'fail', figure: e.code, detail: e.message, hint: e.hint}]
      if (!isPgUrl(target)) checks.push(diskSpaceCheck(path, this.flags['min-free'] * 1048576))
    }
    const healthy = !checks.some((c) => c.status === 'fail')
    const skipped = this.flags.integrity || isPgUrl(target) ? [] : ['quick_check']
    const result: DoctorResult = {path, healthy, checks, skipped}
    if (this.human()) {
      this.log(`${path}: ${healthy ? chalk.green('HEALTHY') : chalk.red('UNHEALTHY')}`)
      for (const c of checks) {
        this.log(`  ${ICON[c.status](c.status.toUpperCase().padEnd(4))}  ${c.name.padEnd(13)} ${c.detail}`)
        if (c.hint && c.status !== 'ok') this.log(`        ${' '.repeat(13)} → ${c.hint}`)
      }
      if (skipped.includes('quick_check')) this.log(chalk.dim(`  SKIP  ${'quick_check'.padEnd(13)} reads the whole file: run with --integrity (nightly)`))
    }
    if (!healthy) {
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(1)
    }
    return result
  }
}
