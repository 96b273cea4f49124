import {DuctileError} from '../errors.js'
import {type ScheduleChange, changeScheduleStatus} from '../queries/schedules.js'
import type {Db} from '../schema/db.js'
import {formatTs} from '../schema/time.js'

/** schedules pause / resume: one change, and the same error when nothing matched. */
export function applyScheduleChange(
  db: Db,
  o: {plugin: string; schedule?: string; to: 'paused_manual' | 'active'; reason: string | null; configured: {id: string; command: string}[]},
): ScheduleChange[] {
  const changed = changeScheduleStatus(db, {
    plugin: o.plugin,
    scheduleId: o.schedule,
    to: o.to,
    reason: o.reason,
    now: formatTs(new Date()),
    configured: o.configured,
  })
  if (changed.length === 0) {
    const which = o.schedule ? `${o.plugin}/${o.schedule}` : `of plugin ${o.plugin}`
    throw new DuctileError('usage', `no ${o.to === 'active' ? 'paused ' : ''}schedule ${which} is known`, {
      hint: '`ductile schedules list --all` shows the schedules the engine has recorded',
    })
  }
  return changed
}
