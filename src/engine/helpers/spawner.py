#!/usr/bin/env python3
"""Ductile's spawn helper in Python: the messages of protocol.ts, like spawner-node.ts, for engines with python3.

Why a second one: fork() copies the page tables of the process that calls it. A Node helper is a ~40 MB
process whose every spawn costs it ~0.6 ms of CPU; Python's subprocess starts the plugin with vfork() from a
small process for ~0.2 ms. On a machine whose cores the plugins already keep busy, that CPU is throughput.

It speaks Node's IPC channel (JSON lines on the file descriptor in NODE_CHANNEL_FD), so the engine talks to
either helper the same way (src/engine/helpers/protocol.ts):
  in:  {id, entrypoint, cwd, env, input, stdoutCap, stderrCap}
  out: {type: 'ready'} once, then per request {id, type: 'spawned', pid} | {id, type: 'error', message}
       | {id, type: 'exit', code, signal, stdout64, stderr64, overflow, stderrTruncated}
Output travels as base64 of the raw bytes, so the engine decodes it exactly as when it spawns plugins itself.
It captures as src/engine/capture.ts does: stdout up to its cap (then the group is killed), stderr truncated,
the end when the pipes close or 200 ms after the exit. Timeouts and kills stay with the engine, which signals
the plugin's process group by its PID. Standard library only; Python 3.5 or later.
"""
import base64
import errno
import json
import os
import selectors
import signal
import subprocess
import sys
import time

DRAIN_AFTER_EXIT = 0.2  # seconds a grandchild may keep the plugin's pipes open after the plugin exited
CHUNK = 65536

channel = int(os.environ['NODE_CHANNEL_FD'])
sel = selectors.DefaultSelector()
runs = {}  # pid -> Run


def send(message):
    data = (json.dumps(message, separators=(',', ':')) + '\n').encode()
    os.set_blocking(channel, True)
    try:
        while data:
            data = data[os.write(channel, data):]
    finally:
        os.set_blocking(channel, False)


def kill_group(pid):
    # The plugin leads its own session and group, so the group's ID is its PID. No fallback to the PID alone:
    # after the exit it may already belong to another process.
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


class Run:
    def __init__(self, request, proc):
        self.id = request['id']
        self.proc = proc
        self.stdout_cap = request['stdoutCap']
        self.stderr_cap = request['stderrCap']
        self.out = []
        self.out_bytes = 0
        self.err = []
        self.err_bytes = 0
        self.overflow = False
        self.stderr_truncated = False
        self.input = memoryview(request['input'].encode())
        self.written = 0
        self.open = {}  # fd -> ('stdin' | 'stdout' | 'stderr', its unbuffered file object)
        self.exit = None  # (code, signal) once reaped
        self.drain_until = None

    def watch(self, f, kind):
        fd = f.fileno()
        os.set_blocking(fd, False)
        self.open[fd] = (kind, f)
        sel.register(fd, selectors.EVENT_WRITE if kind == 'stdin' else selectors.EVENT_READ, self)
        return fd

    def close(self, fd):
        kind, f = self.open.pop(fd)
        sel.unregister(fd)
        f.close()

    def write_input(self, fd):
        try:
            self.written += os.write(fd, self.input[self.written:])
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the plugin did not read its request; a valid response still counts
            self.close(fd)
            return
        if self.written == len(self.input):
            self.close(fd)

    def read(self, fd):
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b''
        if not chunk:
            self.close(fd)
            return
        if self.open[fd][0] == 'stdout':
            if self.overflow:
                return
            if self.out_bytes + len(chunk) > self.stdout_cap:
                self.out.append(chunk[: self.stdout_cap - self.out_bytes])
                self.out_bytes = self.stdout_cap
                self.overflow = True
                kill_group(self.proc.pid)
                return
            self.out.append(chunk)
            self.out_bytes += len(chunk)
        else:
            if self.err_bytes >= self.stderr_cap:
                self.stderr_truncated = True
                return
            take = min(len(chunk), self.stderr_cap - self.err_bytes)
            if take < len(chunk):
                self.stderr_truncated = True
            self.err.append(chunk[:take])
            self.err_bytes += take

    def reaped(self, returncode):
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = 'SIG%d' % -returncode
            self.exit = (None, name)
        else:
            self.exit = (returncode, None)
        self.drain_until = time.monotonic() + DRAIN_AFTER_EXIT

    def finished(self):
        # Done when the plugin exited and its output ended, or the drain time after the exit ran out.
        if self.exit is None:
            return False
        return all(kind == 'stdin' for kind, _ in self.open.values()) or time.monotonic() >= self.drain_until

    def finish(self):
        for fd in list(self.open):
            self.close(fd)
        del runs[self.proc.pid]
        kill_group(self.proc.pid)  # whatever the plugin left in its group goes with it
        code, sig = self.exit
        send({
            'id': self.id, 'type': 'exit', 'code': code, 'signal': sig,
            'stdout64': base64.b64encode(b''.join(self.out)).decode('ascii'),
            'stderr64': base64.b64encode(b''.join(self.err)).decode('ascii'),
            'overflow': self.overflow, 'stderrTruncated': self.stderr_truncated,
        })


def start(request):
    entrypoint = request['entrypoint']
    try:
        proc = subprocess.Popen(
            [entrypoint], cwd=request.get('cwd'), env=request['env'], start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
        )
    except OSError as e:
        # The words Node uses for the same failure, so job_log reads the same whichever process spawned.
        code = errno.errorcode.get(e.errno, 'E%s' % e.errno) if e.errno else type(e).__name__
        send({'id': request['id'], 'type': 'error', 'message': 'spawn %s %s' % (entrypoint, code)})
        return
    except Exception as e:  # e.g. a NUL byte in an argument: that run fails, the helper goes on
        send({'id': request['id'], 'type': 'error', 'message': 'spawn %s: %s' % (entrypoint, e)})
        return
    run = Run(request, proc)
    runs[proc.pid] = run
    send({'id': run.id, 'type': 'spawned', 'pid': proc.pid})
    # Unbuffered (bufsize=0) and non-blocking; the loop reads and writes their descriptors directly.
    stdin = run.watch(proc.stdin, 'stdin')
    run.watch(proc.stdout, 'stdout')
    run.watch(proc.stderr, 'stderr')
    proc.stdin = proc.stdout = proc.stderr = None  # closed by the run, not by the Popen
    run.write_input(stdin)


def reap():
    for pid, run in list(runs.items()):
        if run.exit is None:
            returncode = run.proc.poll()
            if returncode is not None:
                run.reaped(returncode)


def harden():
    # Signals to the engine's group (Ctrl-C, systemd) are the engine's to handle: it drains, then closes the
    # channel, which ends this helper. They are caught and dropped, not ignored: an ignored signal stays
    # ignored across exec, so every plugin started here ignored SIGTERM (a timeout's or a stop's first
    # signal); a caught one is back to its default in the plugin.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: None)
    # Not dumpable: a plugin (same user) cannot read this process's memory or /proc/<pid>/environ, which
    # holds every plugin's environment in flight. Plugins themselves are dumpable again after exec.
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except Exception:
        pass


def main():
    harden()
    os.set_blocking(channel, False)
    # SIGCHLD wakes the loop through this pipe; poll() then reaps whichever plugin exited.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    sel.register(wake_r, selectors.EVENT_READ, 'wake')
    sel.register(channel, selectors.EVENT_READ, 'channel')
    partial = []  # a message not yet ended by its newline, in chunks
    send({'type': 'ready'})
    while True:
        deadlines = [r.drain_until for r in runs.values() if r.drain_until is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for key, _ in sel.select(timeout):
            if key.data == 'channel':
                try:
                    chunk = os.read(channel, CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    # The engine is gone (or stopped): so is the helper, and so are the plugins it started, whose
                    # output has no reader any more (a new engine would requeue their jobs beside them).
                    for pid in list(runs):
                        kill_group(pid)
                    sys.exit(0)
                partial.append(chunk)
                if b'\n' in chunk:
                    *lines, rest = b''.join(partial).split(b'\n')
                    partial = [rest]
                    for line in lines:
                        if line.strip():
                            start(json.loads(line))
            elif key.data == 'wake':
                try:
                    while os.read(wake_r, CHUNK):
                        pass
                except BlockingIOError:
                    pass
            else:
                run = key.data
                if key.fd in run.open:
                    if run.open[key.fd][0] == 'stdin':
                        run.write_input(key.fd)
                    else:
                        run.read(key.fd)
        reap()
        for run in [r for r in runs.values() if r.finished()]:
            run.finish()


if __name__ == '__main__':
    main()
