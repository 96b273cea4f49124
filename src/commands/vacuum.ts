import {Flags} from '@oclif/core'
import {rmSync} from 'node:fs'
import {resolve} from 'node:path'

import {BaseCommand} from '../cli/base.js'
import {mib, progress} from '../cli/progress.js'
import {liveLockHolder} from '../lib/lock.js'
import {DuctileError, usageError} from '../errors.js'
import {createPrivateFile} from '../lib/files.js'
import {autoVacuumMode, checkpoint, fileSize, fileStats, fullVacuum, incrementalVacuum, vacuumInto} from '../schema/sqlite.js'

export interface VacuumResult {
  mode: 'incremental' | 'full' | 'into'
  path: string
  into?: string
  before: {fileBytes: number; walBytes: number; freelistPages: number}
  after: {fileBytes: number; walBytes: number; freelistPages: number}
  freedPages: number
}

export default class Vacuum extends BaseCommand<typeof Vacuum> {
  static override summary = 'Reclaim free space; prints the file and WAL sizes before and after'
  static override description =
    `By default frees pages with incremental vacuum in small steps: safe while the engine runs (databases made by \`db init\` use incremental auto-vacuum). --full rewrites the whole file with VACUUM, holding the write lock throughout (about 2 s per GB): it is refused while an engine holds the lock unless --force, and it also switches an older file to incremental auto-vacuum. --into FILE writes a compacted copy and leaves the live file alone.`
  static override examples = ['<%= config.bin %> vacuum', '<%= config.bin %> vacuum --full', '<%= config.bin %> vacuum --into /backups/ductile-compact.db']

  static override flags = {
    full: Flags.boolean({description: 'rewrite the whole file (VACUUM)'}),
    force: Flags.boolean({description: 'run --full even while an engine is running'}),
    into: Flags.string({description: 'write a compacted copy to this new file instead'}),
    quiet: Flags.boolean({char: 'q', description: 'print nothing on success'}),
  }

  async run(): Promise<VacuumResult> {
    const f = this.flags
    if (f.full && f.into) throw usageError('--full and --into do not go together')
    const db = this.openWrite()
    const snap = () => {
      const s = fileStats(db)
      return {fileBytes: s.fileBytes, walBytes: s.walBytes, freelistPages: s.freelistCount}
    }
    const before = snap()
    let mode: VacuumResult['mode'] = 'incremental'
    let freedPages = 0
    let into: string | undefined
    if (f.into) {
      mode = 'into'
      const target = resolve(f.into)
      into = target
      // Private from its first byte: the copy holds every payload, result and fact.
      createPrivateFile(target)
      try {
        this.guard(db, () => vacuumInto(db, target))
      } catch (err) {
        rmSync(target, {force: true})
        throw err
      }
    } else if (f.full) {
      mode = 'full'
      const holder = liveLockHolder(db.path)
      if (holder && !f.force) {
        throw new DuctileError(
          'engine_running',
          `an engine (PID ${holder.pid}) is running on ${db.path}: a full VACUUM would hold the write lock throughout and stall it`,
          {
            hint: 'run `ductile vacuum` (incremental, safe while it runs), stop the engine first, or pass --force',
          },
        )
      }
      this.guard(db, () => fullVacuum(db))
      freedPages = before.freelistPages
    } else {
      if (autoVacuumMode(db) !== 2) {
        throw new DuctileError('conflict', `${db.path} does not use incremental auto-vacuum, so free pages cannot be returned step by step`, {
          hint: 'run `ductile vacuum --full` once (with the engine stopped): it reclaims the space and switches the file to incremental',
        })
      }
      const bar = progress(this.human() && !f.quiet)
      freedPages = await incrementalVacuum(db, {onProgress: (freed, left) => bar.update(`freed ${freed} pages, ${left} left`)})
      bar.done()
      checkpoint(db, 'TRUNCATE')
    }
    const after = snap()
    if (into) after.fileBytes = fileSize(into)
    if (this.human() && !f.quiet) {
      if (mode === 'into') this.log(`Wrote ${into}: ${mib(after.fileBytes)} (live file ${mib(before.fileBytes)}, WAL ${mib(before.walBytes)}, unchanged).`)
      else
        this.log(
          `${db.path}: ${mib(before.fileBytes)} → ${mib(after.fileBytes)} (WAL ${mib(before.walBytes)} → ${mib(after.walBytes)}), ${freedPages} pages freed.`,
        )
    }
    return {mode, path: db.path, into, before, after, freedPages}
  }
}
