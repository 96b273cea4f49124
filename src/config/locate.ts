import {existsSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {join, resolve} from 'node:path'

import {DuctileError} from '../errors.js'
import {isPgUrl} from '../schema/pg-url.js'

/**
 * Where things are: the database and the config, each found in one order that every command and the engine share.
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

/**
 * state.path (or database.path) of a config file, through the same loader as the engine: includes,
 * environment_vars.include files and `${VAR}` interpolation, resolved against the config's directory.
 */
export async function statePathFromConfig(file: string): Promise<string | null> {
  const {loadConfig} = await import('./load.js')
  const config = loadConfig(file, {throwOnError: false})
  const errors = config.issues.filter((i) => i.severity === 'error' && i.scope !== 'schedule')
  // A config too broken to say where its database is must not send a command to the default path.
  if (config.statePath === null && errors.length) {
    throw new DuctileError(
      'config_invalid',
      `cannot tell the database from ${file}:\n  ${errors.map((i) => `${i.file}: ${i.path}: ${i.message}`).join('\n  ')}`,
      {
        hint: 'fix the config (`ductile config check` lists every problem), or pass --db PATH to skip it',
      },
    )
  }
  if (config.statePath?.includes('${')) {
    throw new DuctileError('config_invalid', `${file}: state.path or state.url has a variable that is not set`, {
      hint: 'set the variable (in the environment or an environment_vars.include file), or pass --db PATH',
    })
  }
  return config.statePath
}

/** The one order every command and the engine use: --db, a non-empty $DUCTILE_DB, state.url or state.path, the default. */
export function chooseDbPath(flag: string | undefined, statePath: string | null): string {
  // A PostgreSQL URL is kept as given; a path is made absolute.
  const target = (v: string) => (isPgUrl(v) ? v.trim() : resolve(v))
  if (flag) return target(flag)
  if (process.env.DUCTILE_DB) return target(process.env.DUCTILE_DB)
  return statePath ?? DEFAULT_DB_PATH
}

export async function resolveDbPath(opts: {db?: string; config?: string}): Promise<string> {
  if (opts.db || process.env.DUCTILE_DB) return chooseDbPath(opts.db, null)
  const config = locateConfig(opts.config)
  return chooseDbPath(undefined, config ? await statePathFromConfig(config) : null)
}
