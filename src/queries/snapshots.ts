import type {Db} from '../schema/db.js'
import {configSnapshotId} from '../schema/ids.js'

/** config_snapshots: one row per admitted configuration (engine start). */
export interface SnapshotInput {
  configHash: string
  sourceHash: string
  sourcePath: string
  reason: 'startup' | 'reload'
  version: string
  binaryPath: string
  sanitizedConfig: unknown
  pluginFingerprints: Record<string, string>
  now: string
}

export function insertConfigSnapshot(db: Db, s: SnapshotInput): string {
  const id = configSnapshotId()
  db.run(
    db.k.insertInto('config_snapshots').values({
      id,
      config_hash: s.configHash,
      source_hash: s.sourceHash,
      source_path: s.sourcePath,
      source: 'file',
      reason: s.reason,
      loaded_at: s.now,
      ductile_version: s.version,
      binary_path: s.binaryPath,
      snapshot_format: 1,
      semantics: null,
      plugin_fingerprints: JSON.stringify(s.pluginFingerprints),
      sanitized_config: JSON.stringify(s.sanitizedConfig),
      secret_fingerprints: null,
    }),
  )
  return id
}
