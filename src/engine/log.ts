import {redact} from '../config/secrets.js'
import {formatTs} from '../schema/time.js'

/** Engine log lines on stderr: `text` for people, `json` (NDJSON) for machines. */
export type LogFormat = 'text' | 'json'
export type Level = 'debug' | 'info' | 'warn' | 'error'
const ORDER: Record<Level, number> = {debug: 10, info: 20, warn: 30, error: 40}

/** Control characters, line breaks included: in a text line they would forge lines or drive the terminal. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g

/** A control character made visible (`\n`, `\r`, `\t`, `\x1b`, `\u009b`). */
function visible(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === '\n') return '\\n'
    if (c === '\r') return '\\r'
    if (c === '\t') return '\\t'
    const code = c.charCodeAt(0)
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}

export class Logger {
  /** Secret values never written: each line is redacted (see Config.secrets). */
  private secrets: string[] = []

  redacting(secrets: string[]): this {
    this.secrets = secrets
    return this
  }

  constructor(
    readonly format: LogFormat = 'text',
    readonly level: Level = 'info',
    private readonly write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {}

  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    if (ORDER[level] < ORDER[this.level]) return
    const time = formatTs(new Date())
    if (this.format === 'json') {
      this.write(redact(JSON.stringify({time, level, msg, ...fields}), this.secrets))
      return
    }
    const kv = Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(' ')
    // Plugin text reaches the message and the values: one line, nothing a terminal would act on.
    this.write(visible(redact(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ` ${kv}` : ''}`, this.secrets)))
  }

  /** A line another thread formatted (and redacted) with its own Logger: written as it is. */
  writeLine(line: string): void {
    this.write(redact(line, this.secrets))
  }

  debug(msg: string, f?: Record<string, unknown>) {
    this.log('debug', msg, f)
  }
  info(msg: string, f?: Record<string, unknown>) {
    this.log('info', msg, f)
  }
  warn(msg: string, f?: Record<string, unknown>) {
    this.log('warn', msg, f)
  }
  error(msg: string, f?: Record<string, unknown>) {
    this.log('error', msg, f)
  }
}
