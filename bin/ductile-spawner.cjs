#!/usr/bin/env node
'use strict'
// The engine's spawn helper: a small, long-lived process that starts plugin processes for the engine.
// fork() copies the page tables of the process that calls it, so spawning from the engine (large) costs
// about twice what it costs from this process (small), and the spawning runs on another core.
// Messages in:  {id, entrypoint, cwd, env, input, stdoutCap, stderrCap}
// Messages out: {id, type: 'spawned', pid} | {id, type: 'error', message}
//               {id, type: 'exit', code, signal, stdout, stderr, overflow, stderrTruncated}
//               (stdout and stderr as UTF-8 text, invalid bytes replaced, as the engine stores them)
// Timeouts and kills stay with the engine, which signals the plugin's process group by its PID.
const {spawn} = require('node:child_process')

// The plugin leads its own group (detached: setsid), so the group's ID is its PID. No fallback to the PID
// alone: after the exit it may already belong to another process.
function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {}
}

// Signals to the engine's group (Ctrl-C, systemd) are the engine's to handle: it drains, then disconnects.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => {})

// The plugins running now, so that they go with the helper when the engine is gone.
const running = new Set()

process.on('message', (m) => {
  let child
  try {
    child = spawn(m.entrypoint, [], {cwd: m.cwd, env: m.env, detached: true, stdio: ['pipe', 'pipe', 'pipe']})
  } catch (e) {
    process.send({id: m.id, type: 'error', message: e.message})
    return
  }
  const out = []
  const err = []
  let outBytes = 0
  let errBytes = 0
  let overflow = false
  let stderrTruncated = false
  let done = false
  let drain
  const finish = (code, signal) => {
    if (done) return
    done = true
    clearTimeout(drain)
    if (child.pid) killGroup(child.pid) // whatever the plugin left in its group goes with it
    running.delete(child.pid)
    process.send({id: m.id, type: 'exit', code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), overflow, stderrTruncated})
  }
  child.on('error', (e) => {
    if (done) return
    done = true
    process.send({id: m.id, type: 'error', message: e.message})
  })
  child.on('spawn', () => {
    running.add(child.pid)
    process.send({id: m.id, type: 'spawned', pid: child.pid})
  })
  child.stdout.on('data', (chunk) => {
    if (overflow) return
    if (outBytes + chunk.length > m.stdoutCap) {
      out.push(chunk.subarray(0, m.stdoutCap - outBytes))
      outBytes = m.stdoutCap
      overflow = true
      killGroup(child.pid)
      return
    }
    out.push(chunk)
    outBytes += chunk.length
  })
  child.stderr.on('data', (chunk) => {
    if (errBytes >= m.stderrCap) {
      stderrTruncated = true
      return
    }
    const take = Math.min(chunk.length, m.stderrCap - errBytes)
    if (take < chunk.length) stderrTruncated = true
    err.push(chunk.subarray(0, take))
    errBytes += take
  })
  let exitCode = null
  let exitSignal = null
  child.on('exit', (code, signal) => {
    exitCode = code
    exitSignal = signal
    // stdout may still hold data; a grandchild may keep the pipe open forever.
    drain = setTimeout(() => finish(exitCode, exitSignal), 200)
  })
  child.on('close', (code, signal) => finish(exitCode ?? code, exitSignal ?? signal))
  child.stdin.on('error', () => {})
  child.stdin.end(m.input)
})

// The engine is gone (or stopped): so is the helper, and so are the plugins it started, whose output has no
// reader any more (a new engine would requeue their jobs beside them).
process.on('disconnect', () => {
  for (const pid of running) killGroup(pid)
  process.exit(0)
})
