import type {ChildProcess} from 'node:child_process'

/**
 * Feeding one plugin process its request and collecting what it writes: stdout up to its cap (past it the
 * head is kept and `onOverflow` kills the group), stderr truncated at its cap, and the end once the pipes
 * close, or 200 ms after the exit (a grandchild may hold the pipes open forever). The engine (spawning
 * itself) and the Node spawn helper both run plugins through this; the Python helper does the same in its
 * own loop.
 */

export interface CaptureOptions {
  input: string
  stdoutCap: number
  stderrCap: number
  /** stdout went over its cap: stop the plugin (its output is cut there whatever it writes next). */
  onOverflow: () => void
  /** The process exited (its pipes may still be open). */
  onExit?: () => void
}

export interface Captured {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: Buffer
  overflow: boolean
  stderrTruncated: boolean
}

/** How long the pipes may stay open after the plugin exited. */
export const DRAIN_AFTER_EXIT_MS = 200

/** Resolves once: with the output, or with the error that kept the process from starting. */
export function capture(child: ChildProcess, o: CaptureOptions): Promise<Captured | {error: Error}> {
  return new Promise((resolve) => {
    const out: Buffer[] = []
    const err: Buffer[] = []
    let outBytes = 0
    let errBytes = 0
    let overflow = false
    let stderrTruncated = false
    let settled = false
    let code: number | null = null
    let signal: NodeJS.Signals | null = null
    let drain: NodeJS.Timeout | undefined
    const finish = (result: Captured | {error: Error}) => {
      if (settled) return
      settled = true
      clearTimeout(drain)
      resolve(result)
    }
    const done = () => finish({code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), overflow, stderrTruncated})

    child.on('error', (error) => finish({error}))
    child.stdout?.on('data', (chunk: Buffer) => {
      if (overflow) return
      if (outBytes + chunk.length > o.stdoutCap) {
        out.push(chunk.subarray(0, o.stdoutCap - outBytes))
        outBytes = o.stdoutCap
        overflow = true
        o.onOverflow()
        return
      }
      out.push(chunk)
      outBytes += chunk.length
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      if (errBytes >= o.stderrCap) {
        stderrTruncated = true
        return
      }
      const take = Math.min(chunk.length, o.stderrCap - errBytes)
      if (take < chunk.length) stderrTruncated = true
      err.push(chunk.subarray(0, take))
      errBytes += take
    })
    child.on('exit', (c, s) => {
      code = c
      signal = s
      o.onExit?.()
      drain = setTimeout(done, DRAIN_AFTER_EXIT_MS)
    })
    child.on('close', (c, s) => {
      code ??= c
      signal ??= s
      done()
    })
    // EPIPE: the plugin did not read its request; a valid response still counts.
    child.stdin?.on('error', () => {})
    child.stdin?.end(o.input)
  })
}
