import {spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = `${ROOT}bin/run.js`

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout parsed as JSON (throws with the output when it is not). */
  // biome-ignore lint/suspicious/noExplicitAny: a command's JSON, read loosely: a missing key fails the assertion
  json<T = any>(): T
}

/** Run the built CLI the way cron would: a real process, real exit code, no TTY. */
export function runCli(
  args: string[],
  opts: {env?: Record<string, string | undefined>; input?: string; cwd?: string; timeoutMs?: number} = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries({...process.env, NO_COLOR: '1', DUCTILE_DB: '', DUCTILE_CONFIG_DIR: '', NODE_ENV: '', ...opts.env})) {
      if (v !== undefined && v !== '') env[k] = v
    }
    const child = spawn(process.execPath, [BIN, ...args], {cwd: opts.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        code,
        signal,
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout)
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`)
          }
        },
      })
    })
    child.stdin.end(opts.input ?? '')
  })
}
