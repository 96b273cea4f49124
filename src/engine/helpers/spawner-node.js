// @ts-check
import {spawn} from 'node:child_process'

import {capture} from '../capture.js'

/**
 * The engine's spawn helper in Node: a small, long-lived process that starts plugin processes for the
 * engine. fork() copies the page tables of the process that calls it, so spawning from the engine (large)
 * costs about twice what it costs from this process (small), and the spawning runs on another core. The
 * messages are in protocol.ts; the capture is the engine's own (capture.js). Plain JavaScript, type-checked
 * through JSDoc, so it starts in tens of milliseconds from the sources as from dist/: the engine's timeout
 * runs from the request, and a helper slow to start would eat into it.
 *
 * @typedef {import('./protocol.js').HelperMessage} HelperMessage
 * @typedef {import('./protocol.js').HelperRequest} HelperRequest
 */

/** @param {HelperMessage} m */
const send = (m) => process.send?.(m)

/**
 * The plugin leads its own group (detached: setsid), so the group's ID is its PID. No fallback to the PID
 * alone: after the exit it may already belong to another process.
 * @param {number | undefined} pid
 */
function killGroup(pid) {
  if (!pid) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

// Signals to the engine's group (Ctrl-C, systemd) are the engine's to handle: it drains, then disconnects.
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) process.on(sig, () => {})

/** The plugins running now, so that they go with the helper when the engine is gone. @type {Set<number>} */
const running = new Set()

process.on('message', (/** @type {HelperRequest} */ m) => {
  /** @type {import('node:child_process').ChildProcess} */
  let child
  try {
    child = spawn(m.entrypoint, [], {cwd: m.cwd, env: m.env, detached: true, stdio: ['pipe', 'pipe', 'pipe']})
  } catch (e) {
    send({id: m.id, type: 'error', message: e instanceof Error ? e.message : String(e)})
    return
  }
  child.on('spawn', () => {
    if (!child.pid) return
    running.add(child.pid)
    send({id: m.id, type: 'spawned', pid: child.pid})
  })
  void capture(child, {input: m.input, stdoutCap: m.stdoutCap, stderrCap: m.stderrCap, onOverflow: () => killGroup(child.pid)}).then((r) => {
    if ('error' in r) {
      send({id: m.id, type: 'error', message: r.error.message})
      return
    }
    killGroup(child.pid) // whatever the plugin left in its group goes with it
    if (child.pid) running.delete(child.pid)
    const {code, signal, overflow, stderrTruncated} = r
    send({id: m.id, type: 'exit', code, signal, stdout64: r.stdout.toString('base64'), stderr64: r.stderr.toString('base64'), overflow, stderrTruncated})
  })
})

// The engine is gone (or stopped): so is the helper, and so are the plugins it started, whose output has no
// reader any more (a new engine would requeue their jobs beside them).
process.on('disconnect', () => {
  for (const pid of running) killGroup(pid)
  process.exit(0)
})

send({type: 'ready'})
