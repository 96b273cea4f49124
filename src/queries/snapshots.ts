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

const SUMMARY = ['id', 'loaded_at', 'reason', 'config_hash', 'source_path', 'ductile_version'] as const

/** A config snapshot as `config history` lists it. */
export interface SnapshotSummary {
  id: string
  loaded_at: string
  reason: string
  config_hash: string
  source_path: string | null
  ductile_version: string | null
}

/** The newest `limit` snapshots, newest first (a small table: one row per engine start or reload). */
export function listSnapshots(db: Db, limit: number): SnapshotSummary[] {
  return db.all(db.k.selectFrom('config_snapshots').select(SUMMARY).orderBy('loaded_at', 'desc').orderBy('id', 'desc').limit(limit))
}

/** The same, each with its sanitised config (config history compares each with the one before). */
export function listSnapshotConfigs(db: Db, limit: number): (SnapshotSummary & {sanitized_config: string | null})[] {
  return db.all(
    db.k
      .selectFrom('config_snapshots')
      .select([...SUMMARY, 'sanitized_config'])
      .orderBy('loaded_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit),
  )
}

/** One snapshot with its sanitised config (secrets were masked when it was taken). */
export function findSnapshot(db: Db, id: string): (SnapshotSummary & {sanitized_config: string | null}) | undefined {
  return db.get(
    db.k
      .selectFrom('config_snapshots')
      .select([...SUMMARY, 'sanitized_config'])
      .where('id', '=', id),
  )
}
