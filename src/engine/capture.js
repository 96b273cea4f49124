// @ts-check
/**
 * Feeding one plugin process its request and collecting what it writes: stdout up to its cap (past it the
 * head is kept and `onOverflow` kills the group), stderr truncated at its cap, and the end once the pipes
 * close, or 200 ms after the exit (a grandchild may hold the pipes open forever). The engine (spawning
 * itself) and the Node spawn helper both run plugins through this; the Python helper does the same in its
 * own loop. Plain JavaScript, type-checked through JSDoc: the Node helper loads it with no TypeScript
 * loader, so the helper starts as fast from the sources (tests) as from dist/.
 *
 * @typedef {object} CaptureOptions
 * @property {string} input
 * @property {number} stdoutCap
 * @property {number} stderrCap
 * @property {() => void} onOverflow stdout went over its cap: stop the plugin (its output is cut there).
 * @property {() => void} [onExit] the process exited (its pipes may still be open).
 *
 * @typedef {object} Captured
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {Buffer} stdout
 * @property {Buffer} stderr
 * @property {boolean} overflow
 * @property {boolean} stderrTruncated
 */

/** How long the pipes may stay open after the plugin exited. */
export const DRAIN_AFTER_EXIT_MS = 200

/**
 * Resolves once: with the output, or with the error that kept the process from starting.
 * @param {import('node:child_process').ChildProcess} child
 * @param {CaptureOptions} o
 * @returns {Promise<Captured | {error: Error}>}
 */
export function capture(child, o) {
  return new Promise((resolve) => {
    /** @type {Buffer[]} */
    const out = []
    /** @type {Buffer[]} */
    const err = []
    let outBytes = 0
    let errBytes = 0
    let overflow = false
    let stderrTruncated = false
    let settled = false
    /** @type {number | null} */
    let code = null
    /** @type {NodeJS.Signals | null} */
    let signal = null
    /** @type {NodeJS.Timeout | undefined} */
    let drain
    /** @param {Captured | {error: Error}} result */
    const finish = (result) => {
      if (settled) return
      settled = true
      clearTimeout(drain)
      resolve(result)
    }
    const done = () => finish({code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), overflow, stderrTruncated})

    child.on('error', (error) => finish({error}))
    child.stdout?.on('data', (/** @type {Buffer} */ chunk) => {
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
    child.stderr?.on('data', (/** @type {Buffer} */ chunk) => {
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
