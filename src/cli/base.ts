import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import chalk from 'chalk'

import {DuctileError, EXIT_FAILURE, EXIT_USAGE} from '../errors.js'
import {type Db, translateSqliteError} from '../schema/db.js'
import {openStore} from '../schema/open.js'
import {displayTarget} from '../schema/pg-url.js'
import {assertSchemaCurrent} from '../schema/migrations.js'
import {locateConfig, resolveDbPath} from '../config/locate.js'
import type {Config} from '../config/types.js'
import {printable} from './render.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** The JSON shape of every error under --json: scripts read code and exitCode, people read message and hint. */
export interface ErrorJson {
  error: {code: string; message: string; exitCode: number; hint?: string}
}

/**
 * The base of every command: owns --db/--config/--json/--no-color, database opening, colour policy, the one
 * error shape and the exit codes (0 ok, 1 runtime or database failure, 2 usage or validation).
 * Lives outside src/commands/ so oclif does not take it for a command.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true
  /**
   * Whether the command reads the database through dbPath()/openRead()/openWrite(). Those that load the whole
   * runtime themselves (engine start, jobs enqueue, events emit) or need no database say false, so the
   * config is not loaded twice on their start-up path.
   */
  static usesDbPath = true

  static override baseFlags = {
    db: Flags.string({
      description: 'database file (default: $DUCTILE_DB, then state.path from the config, then ~/.config/ductile/ductile.db)',
      helpGroup: 'GLOBAL',
    }),
    config: Flags.string({
      description: 'config.yaml or its directory (default: $DUCTILE_CONFIG_DIR, ~/.config/ductile, /etc/ductile)',
      helpGroup: 'GLOBAL',
    }),
    'no-color': Flags.boolean({description: 'plain output without colour (also NO_COLOR, or when piped)', helpGroup: 'GLOBAL'}),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private handles: Db[] = []

  public override async init(): Promise<void> {
    await super.init()
    const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '' ? true : this.argv.includes('--no-color') || !process.stdout.isTTY
    if (noColor) chalk.level = 0
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    // Resolved here (the config loader is imported lazily); a problem surfaces only when the path is used.
    if (!(this.ctor as typeof BaseCommand).usesDbPath) return
    try {
      this.resolvedDb = {path: await resolveDbPath({db: this.flags.db, config: this.flags.config})}
    } catch (err) {
      this.resolvedDb = {error: err}
    }
  }

  private resolvedDb: {path: string} | {error: unknown} = {
    error: new Error('dbPath() is not for this command (usesDbPath is false), or was called before init()'),
  }

  /** Human output: control characters in it (plugin text) are shown escaped, never sent to the terminal. */
  public override log(message = '', ...args: unknown[]): void {
    super.log(printable(String(message)), ...args)
  }

  /** The database path (--db, $DUCTILE_DB, state.path, then the default), by the resolver the engine uses too. */
  protected dbPath(): string {
    if ('error' in this.resolvedDb) throw this.resolvedDb.error
    return this.resolvedDb.path
  }

  /**
   * The config when there is a usable one, for thresholds (doctor's, the engines' lease); null without one or
   * when it does not load. Read commands run without a config. The loader is imported only when asked for.
   */
  protected async optionalConfig(): Promise<Config | null> {
    try {
      const file = locateConfig(this.flags.config)
      if (!file) return null
      const {loadConfig} = await import('../config/load.js')
      return loadConfig(file, {throwOnError: false})
    } catch {
      return null
    }
  }

  /** Read-only: never creates, migrates or blocks a writer; refuses a schema other than ours. */
  protected openRead(): Db {
    const db = this.guard({path: displayTarget(this.dbPath())}, () => openStore(this.dbPath(), {mode: 'read'}))
    this.handles.push(db)
    this.guard(db, () => assertSchemaCurrent(db))
    return db
  }

  /** For operator writes: short BEGIN IMMEDIATE transactions with busy_timeout. */
  protected openWrite(): Db {
    // Checked before the connection writes anything (WAL mode, permissions): a refused file is left as it was.
    const db = this.guard({path: displayTarget(this.dbPath())}, () => openStore(this.dbPath(), {mode: 'write', check: assertSchemaCurrent}))
    this.handles.push(db)
    return db
  }

  /** Run database work, translating SQLite's errors into ours. */
  protected guard<R>(db: Pick<Db, 'path'>, fn: () => R): R {
    try {
      return fn()
    } catch (err) {
      throw translateSqliteError(err, db.path)
    }
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    for (const h of this.handles) h.close()
    this.handles = []
    await super.finally(err)
  }

  protected human(): boolean {
    return !this.jsonEnabled()
  }

  protected override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
  }

  protected override toErrorJson(err: unknown): ErrorJson {
    const e = describeError(err)
    return {error: {code: e.code, message: e.message, exitCode: e.exitCode, ...(e.hint ? {hint: e.hint} : {})}}
  }

  /** One place sets the exit code and prints the error: stdout JSON under --json, stderr otherwise. */
  public override async catch(err: Error & {exitCode?: number}): Promise<void> {
    if (err instanceof Errors.ExitError) throw err
    const e = describeError(err)
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(err))
    } else {
      process.stderr.write(`${chalk.red('Error')} (${e.code}): ${printable(e.message)}\n`)
      if (e.hint) process.stderr.write(`  ${printable(e.hint)}\n`)
      if (process.env.DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    this.exit(e.exitCode)
  }
}

/** oclif wraps flag-parse errors as "Parsing --flag \n\t<message>\nSee more help with --help": keep "--flag: <message>". */
function cleanParseMessage(message: string): string {
  return message
    .replace(/\n?See more help with --help/, '')
    .replace(/^Parsing (--[\w-]+)\s*\n\s*/, '$1: ')
    .trim()
}

export function describeError(err: unknown): {code: string; message: string; exitCode: number; hint?: string} {
  const translated = err instanceof DuctileError ? err : translateSqliteError(err, '(database)')
  if (translated instanceof DuctileError) {
    return {code: translated.code, message: cleanParseMessage(translated.message), exitCode: translated.exitCode, hint: translated.hint}
  }
  const e = err as Error & {oclif?: {exit?: number}; name?: string}
  if (e instanceof Errors.CLIError || (e?.name && /Parse|Flag|Args|CLIError/.test(e.name))) {
    return {code: 'usage', message: cleanParseMessage(e.message ?? String(err)), exitCode: EXIT_USAGE, hint: 'see --help for the flags and examples'}
  }
  return {code: 'runtime', message: e?.message ?? String(err), exitCode: EXIT_FAILURE}
}
