import {Args} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../cli/base.js'
import {type ConfigChange, diffConfigs} from '../../cli/config-diff.js'
import {parseJsonOr} from '../../lib/json.js'
import {findSnapshot, listSnapshots, type SnapshotSummary} from '../../queries/snapshots.js'
import {DuctileError} from '../../errors.js'

export interface ConfigDiffResult {
  from: SnapshotSummary
  to: SnapshotSummary
  /** The hashes differ but no visible key does: only masked values (secrets) changed. */
  secrets_only: boolean
  changes: ConfigChange[]
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

export default class ConfigDiff extends BaseCommand<typeof ConfigDiff> {
  static override summary = 'What changed between two config snapshots (default: the last two), secrets masked'
  static override description =
    'Keys added (+), removed (-) and changed (~) from SNAPSHOT_A to SNAPSHOT_B, as key paths. One id compares that snapshot with the newest. A secret shows as *** in both; a change of its value shows only as different hashes.'
  static override examples = [
    '<%= config.bin %> config diff',
    '<%= config.bin %> config diff cfg_01a22df1e5f070d49ac5d718383d1147',
    '<%= config.bin %> config diff cfg_01a22df1e5f070d49ac5d718383d1147 cfg_01a22df2aa0170d4aa7c2d1e88b3c0aa --json',
  ]

  static override args = {
    a: Args.string({description: 'the older snapshot id (default: the one before the newest)'}),
    b: Args.string({description: 'the newer snapshot id (default: the newest)'}),
  }

  async run(): Promise<ConfigDiffResult> {
    const db = this.openRead()
    const result = this.guard(db, () =>
      db.read((): ConfigDiffResult => {
        const newest = listSnapshots(db, 2)
        const ids = this.args.b ? [this.args.a, this.args.b] : this.args.a ? [this.args.a, newest[0]?.id] : [newest[1]?.id, newest[0]?.id]
        if (!ids[0] || !ids[1])
          throw new DuctileError('not_found', 'fewer than two config snapshots to compare', {
            hint: 'the engine takes one at every start; `ductile config history` lists them',
          })
        const [a, b] = ids.map((id) => {
          const s = findSnapshot(db, id as string)
          if (!s) throw new DuctileError('not_found', `no config snapshot ${id}`, {hint: '`ductile config history` lists them'})
          return s
        }) as [NonNullable<ReturnType<typeof findSnapshot>>, NonNullable<ReturnType<typeof findSnapshot>>]
        const changes = diffConfigs(parseJsonOr(a.sanitized_config, null), parseJsonOr(b.sanitized_config, null))
        const {sanitized_config: _a, ...from} = a
        const {sanitized_config: _b, ...to} = b
        return {from, to, secrets_only: changes.length === 0 && a.config_hash !== b.config_hash, changes}
      }),
    )
    if (this.human()) {
      this.log(
        `${chalk.bold(result.from.id)} (${result.from.reason}, ${result.from.loaded_at}) → ${chalk.bold(result.to.id)} (${result.to.reason}, ${result.to.loaded_at})`,
      )
      if (result.changes.length === 0) this.log(result.secrets_only ? '  only masked values (secrets) differ: the hashes do' : '  the same config')
      for (const c of result.changes) {
        if (c.change === 'added') this.log(chalk.green(`  + ${c.path}: ${show(c.after)}`))
        else if (c.change === 'removed') this.log(chalk.red(`  - ${c.path}: ${show(c.before)}`))
        else this.log(chalk.yellow(`  ~ ${c.path}: ${show(c.before)} → ${show(c.after)}`))
      }
    }
    return result
  }
}
