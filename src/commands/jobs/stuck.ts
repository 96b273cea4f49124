import {BaseCommand} from '../../cli/base.js'
import {durationFlag} from '../../cli/flags.js'
import {renderTable, when} from '../../cli/render.js'
import {type RunningJob, findStuckJobs} from '../../queries/jobs.js'
import {processAlive} from '../../lib/proc.js'
import {parseTs, tsAgo} from '../../schema/time.js'

export interface StuckJob extends RunningJob {
  running_ms: number | null
  /** Is the plugin process of the current attempt still alive (null: no PID recorded). */
  process_alive: boolean | null
  engine_alive: boolean | null
}

export interface JobsStuckResult {
  older_than_ms: number
  jobs: StuckJob[]
}

export default class JobsStuck extends BaseCommand<typeof JobsStuck> {
  static override summary = 'Running jobs started before a cutoff, with whether their processes are alive'
  static override description =
    'The reference query "Check for stuck running jobs (orphans)". A job whose engine and plugin process are both gone is an orphan: the engine recovers it at its next start.'
  static override examples = ['<%= config.bin %> jobs stuck', '<%= config.bin %> jobs stuck --older-than 15m --json']

  static override flags = {
    'older-than': durationFlag({description: 'started more than this long ago', default: 3_600_000}),
  }

  async run(): Promise<JobsStuckResult> {
    const db = this.openRead()
    const olderThan = this.flags['older-than']
    const now = Date.now()
    const rows = this.guard(db, () => findStuckJobs(db, tsAgo(olderThan)))
    const jobs: StuckJob[] = rows.map((r) => ({
      ...r,
      running_ms: r.started_at ? now - (parseTs(r.started_at)?.getTime() ?? now) : null,
      // On PostgreSQL the PIDs may be another host's: unknown from here (null); the engines table says who is alive.
      process_alive: r.plugin_pid && db.kind === 'sqlite' ? processAlive(r.plugin_pid, r.plugin_started_at) : null,
      engine_alive: r.engine_pid && db.kind === 'sqlite' ? processAlive(r.engine_pid) : null,
    }))
    if (this.human()) {
      if (jobs.length === 0) this.log('No stuck jobs.')
      else
        this.log(
          renderTable(
            [
              {header: 'ID', get: (j: StuckJob) => j.id},
              {header: 'PLUGIN', get: (j) => j.plugin},
              {header: 'COMMAND', get: (j) => j.command},
              {header: 'STARTED', get: (j) => when(j.started_at)},
              {header: 'ATTEMPT', get: (j) => `${j.attempt}/${j.max_attempts}`},
              {header: 'PLUGIN PID', get: (j) => (j.plugin_pid ? `${j.plugin_pid} ${liveness(j.process_alive)}` : '-')},
              {header: 'ENGINE PID', get: (j) => (j.engine_pid ? `${j.engine_pid} ${liveness(j.engine_alive)}` : '-')},
            ],
            jobs,
          ),
        )
    }
    return {older_than_ms: olderThan, jobs}
  }
}

/** null: the PID may be another host's (a shared database), so nothing is said of it. */
const liveness = (alive: boolean | null) => (alive === null ? '?' : alive ? 'alive' : 'gone')
