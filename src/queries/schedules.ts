import type {Db} from '../schema/db.js'
import type {ScheduleEntry} from '../schema/types.js'

/** schedule_entries: the scheduler's persistent state. */

/** Reference: "See upcoming scheduled runs" (status active, by next_run_at); every status with `all`. */
export function listSchedules(db: Db, opts: {all?: boolean; plugin?: string} = {}): ScheduleEntry[] {
  let q = db.k.selectFrom('schedule_entries').selectAll()
  if (!opts.all) q = q.where('status', '=', 'active')
  if (opts.plugin) q = q.where('plugin', '=', opts.plugin)
  if (opts.all) q = q.orderBy('plugin').orderBy('schedule_id')
  else q = q.orderBy('next_run_at', 'asc').orderBy('plugin').orderBy('schedule_id')
  return db.all(q)
}
