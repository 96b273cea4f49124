#!/usr/bin/env python3
"""The chaos bench's plugin: a line per run start and end in config.dir/trace, and an exclusive lock per job
held for the run. A second run of the same job while one runs cannot take the lock: it writes an "overlap"
line (the kernel drops a lock with its process, so a run killed with its engine holds none)."""
import fcntl, json, os, random, sys, time

req = json.load(sys.stdin)
d = req["config"]["dir"]
job = req["job_id"]
trace = os.path.join(d, "trace")

def note(what):
    with open(trace, "a") as f:
        f.write(f"{what} {job} {os.getpid()} {time.time():.3f}\n")

lock = open(os.path.join(d, job + ".lock"), "w")
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    note("overlap")
    fcntl.flock(lock, fcntl.LOCK_EX)
note("start")
time.sleep(random.uniform(0.0, 0.1))
note("end")
sys.stdout.write(json.dumps({"status": "ok", "result": "recorded"}) + "\n")
