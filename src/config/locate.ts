import {existsSync, readFileSync, statSync} from 'node:fs'
import {createRequire} from 'node:module'
import {homedir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {DuctileError} from '../errors.js'
import {interpolateEnv} from './interpolate.js'

/**
 * Where things are (spec decision 4).
 * Config: --config PATH (a file or its directory), else $DUCTILE_CONFIG_DIR, else ~/.config/ductile/config.yaml,
 * else /etc/ductile/config.yaml.
 * Database: --db PATH, else $DUCTILE_DB, else state.path from the config, else ~/.config/ductile/ductile.db.
 */

export const DEFAULT_DB_PATH = join(homedir(), '.config', 'ductile', 'ductile.db')

function asConfigFile(p: string): string {
  const abs = resolve(p)
  if (existsSync(abs) && statSync(abs).isDirectory()) return join(abs, 'config.yaml')
  return abs
}

/** The config file to use, or null when none is found. An explicit --config that does not exist is an error. */
export function locateConfig(flag?: string): string | null {
  if (flag) {
    const file = asConfigFile(flag)
    if (!existsSync(file)) {
      throw new DuctileError('config_missing', `config ${file} does not exist`, {
        hint: 'pass --config with the path of config.yaml or of its directory',
        exitCode: 2,
      })
    }
    return file
  }
  const candidates = [
    process.env.DUCTILE_CONFIG_DIR ? asConfigFile(process.env.DUCTILE_CONFIG_DIR) : null,
    join(homedir(), '.config', 'ductile', 'config.yaml'),
    '/etc/ductile/config.yaml',
  ]
  for (const c of candidates) if (c && existsSync(c)) return c
  return null
}

/** state.path (or database.path) of a config file, resolved against the config's directory. */
export function statePathFromConfig(file: string): string | null {
  const require = createRequire(import.meta.url)
  const YAML = require('yaml') as typeof import('yaml')
  let doc: unknown
  try {
    doc = YAML.parse(interpolateEnv(readFileSync(file, 'utf8'), process.env).text)
  } catch (err) {
    throw new DuctileError('config_invalid', `cannot read ${file}: ${(err as Error).message}`, {
      hint: 'fix the YAML, or pass --db PATH to skip the config',
    })
  }
  const d = (doc ?? {}) as {state?: {path?: unknown}; database?: {path?: unknown}}
  const p = d.state?.path ?? d.database?.path
  if (typeof p !== 'string' || p === '') return null
  return resolve(dirname(file), p)
}

export function resolveDbPath(opts: {db?: string; config?: string}): string {
  if (opts.db) return resolve(opts.db)
  if (process.env.DUCTILE_DB) return resolve(process.env.DUCTILE_DB)
  const config = locateConfig(opts.config)
  if (config) {
    const p = statePathFromConfig(config)
    if (p) return p
  }
  return DEFAULT_DB_PATH
}
