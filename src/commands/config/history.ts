import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base.js'
import {diffConfigs} from '../../cli/config-diff.js'
import {parseJsonOr} from '../../lib/json.js'
import {renderTable, when} from '../../cli/render.js'
import {type SnapshotSummary, listSnapshotConfigs} from '../../queries/snapshots.js'

export interface ConfigHistoryEntry extends SnapshotSummary {
  /** Keys that differ from the snapshot before it (null for the oldest listed). */
  changed_keys: number | null
}

export interface ConfigHistoryResult {
  snapshots: ConfigHistoryEntry[]
}

export default class ConfigHistory extends BaseCommand<typeof ConfigHistory> {
  static override summary = 'The config snapshots the engine took (one per start or reload), newest first, with how many keys changed'
  static override description =
    'From config_snapshots: when and why each was taken, its hash, source and version, and how many keys differ from the one before (`ductile config diff A B` shows them; secrets are masked in the snapshots).'
  static override examples = ['<%= config.bin %> config history', '<%= config.bin %> config history --limit 5 --json']

  static override flags = {
    limit: Flags.integer({description: 'snapshots to list', default: 20, min: 1, max: 1000}),
  }

  async run(): Promise<ConfigHistoryResult> {
    const db = this.openRead()
    const snapshots = this.guard(db, () =>
      db.read(() => {
        // One more than asked: the oldest listed is compared with the one before it.
        const rows = listSnapshotConfigs(db, this.flags.limit + 1)
        const configs = rows.map((r) => parseJsonOr(r.sanitized_config, null))
        return rows.slice(0, this.flags.limit).map(({sanitized_config: _c, ...r}, i) => ({
          ...r,
          changed_keys: i + 1 < rows.length ? diffConfigs(configs[i + 1], configs[i]).length : null,
        }))
      }),
    )
    if (this.human()) {
      if (snapshots.length === 0) this.log('No config snapshots: the engine takes one at every start.')
      else
        this.log(
          renderTable(
            [
              {header: 'ID', get: (s: ConfigHistoryEntry) => s.id},
              {header: 'LOADED', get: (s) => when(s.loaded_at)},
              {header: 'REASON', get: (s) => s.reason},
              {header: 'HASH', get: (s) => s.config_hash.slice(0, 12)},
              {header: 'CHANGED', get: (s) => (s.changed_keys === null ? '-' : s.changed_keys === 0 ? 'same' : `${s.changed_keys} keys`), align: 'right'},
              {header: 'SOURCE', get: (s) => s.source_path},
            ],
            snapshots,
          ),
        )
    }
    return {snapshots}
  }
}
