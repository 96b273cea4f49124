import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base.js'
import {durationFlag} from '../cli/flags.js'
import {mib, progress} from '../cli/progress.js'
import {renderTable} from '../cli/render.js'
import {DEFAULT_RETENTION_MS, PRUNE_TABLES, type PruneResult, type PruneTable, type PruneTableResult, prune} from '../queries/maintenance.js'
import {formatDuration} from '../schema/time.js'

export type PruneCommandResult = PruneResult

export default class Prune extends BaseCommand<typeof Prune> {
  static override summary = 'Delete old rows in short batches, safe to run from cron while the engine writes'
  static override description =
    `Default retention: job_log 30d (by completed_at), terminal job_queue rows 24h (queued and running rows are never touched), job_transitions 30d, job_attempts 30d, circuit_breaker_transitions 90d. plugin_facts, event_context, config_snapshots and current-state tables are never pruned. The newest failed job_log row per (plugin, command) is kept whatever its age, so \`jobs errors\` can always show the last failure. Deletes about 5,000 rows per short transaction, yields between batches and checkpoints the WAL. Silent unless stderr is a terminal; errors go to stderr with exit 1.`
  static override examples = [
    '<%= config.bin %> prune',
    '<%= config.bin %> prune --table job_log --older-than 7d',
    '<%= config.bin %> prune --dry-run --json',
    '# crontab: prune every night at 03:17\n17 3 * * * ductile prune --quiet --db /var/lib/ductile/ductile.db',
  ]

  static override flags = {
    'older-than': durationFlag({description: 'retention for the chosen tables (default: per table, see above)'}),
    table: Flags.option({options: PRUNE_TABLES, multiple: true, description: 'only these tables (repeat the flag)'})(),
    'dry-run': Flags.boolean({description: 'count what would be deleted, delete nothing'}),
    'keep-last-failure': Flags.boolean({description: 'keep the newest failed job_log row per plugin and command', default: true, allowNo: true}),
    quiet: Flags.boolean({char: 'q', description: 'print nothing on success'}),
  }

  async run(): Promise<PruneCommandResult> {
    const db = this.openWrite()
    const f = this.flags
    const tables = (f.table ?? [...PRUNE_TABLES]) as PruneTable[]
    const retention: Partial<Record<PruneTable, number>> = {}
    for (const t of tables) retention[t] = f['older-than'] ?? DEFAULT_RETENTION_MS[t]
    const bar = progress(this.human() && !f.quiet)
    let result: PruneResult
    try {
      result = await prune(db, {
        tables,
        retention,
        keepLastFailure: f['keep-last-failure'],
        dryRun: f['dry-run'],
        onProgress: bar.on
          ? ({table, deleted, total}) => bar.update(`${table}: ${deleted.toLocaleString('en')} / ${total.toLocaleString('en')} rows`)
          : undefined,
      })
    } catch (err) {
      bar.done()
      throw err
    }
    bar.done()
    if (this.human() && !f.quiet) {
      this.log(
        renderTable(
          [
            {header: 'TABLE', get: (r: PruneTableResult) => r.table},
            {header: f['dry-run'] ? 'WOULD DELETE' : 'DELETED', get: (r) => r.deleted.toLocaleString('en'), align: 'right'},
            {header: 'KEPT', get: (r) => r.kept.toLocaleString('en'), align: 'right'},
            {header: 'OLDER THAN', get: (r) => `${formatRetention(r.retention_ms)} (${r.cutoff.slice(0, 19)})`},
          ],
          result.tables,
        ),
      )
      this.log(
        `${f['dry-run'] ? 'Dry run: would delete' : 'Deleted'} ${result.total_deleted.toLocaleString('en')} rows in ${formatDuration(result.duration_ms)}; WAL ${mib(result.wal_bytes_after)}.`,
      )
    }
    return result
  }
}

function formatRetention(ms: number): string {
  const d = ms / 86_400_000
  return Number.isInteger(d) ? `${d}d` : formatDuration(ms)
}
