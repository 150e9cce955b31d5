"""Python signal handlers after restore (Python installs every handler with SA_ONSTACK).

Usage: py_signals.py OUTFILE [faulthandler]
With `faulthandler`, faulthandler.enable() gives the main thread an alternate signal stack of its own.
Several threads run; after restore (SIGTERM from the harness) each thread gets a SIGUSR1 through
pthread_kill (the C-level handler runs in that thread, on its stack), then the process signals
itself; every delivery must reach the Python handler and the process must live to write PASS.
"""
import os
import signal
import sys
import threading
import time

out = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "faulthandler":
    import faulthandler
    faulthandler.enable()

def line(s):
    with open(out, "a") as f:
        f.write(s + "\n")

hits = []
term = threading.Event()
signal.signal(signal.SIGUSR1, lambda sig, frame: hits.append(sig))
signal.signal(signal.SIGTERM, lambda sig, frame: term.set())

stop = threading.Event()
counts = [0] * 3
def worker(i):
    while not stop.is_set():
        counts[i] += 1
        time.sleep(0.005)
threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
line("READY")
while not term.is_set():
    time.sleep(0.01)

fails = []
before = list(counts)
for t in threads:
    signal.pthread_kill(t.ident, signal.SIGUSR1)
    time.sleep(0.05)
os.kill(os.getpid(), signal.SIGUSR1)
deadline = time.monotonic() + 10
while len(hits) < 4 and time.monotonic() < deadline:
    time.sleep(0.01)
if len(hits) != 4:
    fails.append(f"SIGUSR1 handler ran {len(hits)} times, want 4")
time.sleep(0.1)
if any(a <= b for a, b in zip(counts, before)):
    fails.append(f"threads stopped counting: {before} -> {counts}")
stop.set()
for t in threads:
    t.join(10)
for f in fails:
    line("FAIL: " + f)
if not fails:
    line("PASS")
sys.exit(1 if fails else 0)
