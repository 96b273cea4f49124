/**
 * The messages between the engine and a spawn helper (the Node one, spawner-node.ts, and the Python one,
 * spawner.py, speak the same), over Node's IPC channel as JSON:
 *   in:  one HelperRequest per plugin run
 *   out: {type: 'ready'} once, then per request 'spawned' (or 'error'), then 'exit'
 * Output travels as base64 of the raw bytes, so the engine decodes it one way whichever process captured it
 * (and exactly as when it spawns plugins itself). Timeouts and kills stay with the engine, which signals the
 * plugin's process group by its PID.
 */

export interface HelperRequest {
  id: number
  entrypoint: string
  cwd?: string
  env: Record<string, string>
  input: string
  stdoutCap: number
  stderrCap: number
}

export type HelperMessage =
  | {type: 'ready'}
  | {id: number; type: 'spawned'; pid: number}
  | {id: number; type: 'error'; message: string}
  | {
      id: number
      type: 'exit'
      code: number | null
      signal: NodeJS.Signals | null
      stdout64: string
      stderr64: string
      overflow: boolean
      stderrTruncated: boolean
    }
