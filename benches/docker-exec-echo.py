#!/usr/bin/env python3
"""Keystroke echo through `docker exec -it`: the baseline for the web terminal's echo.

Starts `docker exec -it -u TENANT hostel-TENANT bash -l` in a pseudo-terminal, waits for the
prompt, then 30 times sends one key and times until the shell's echo of it comes back. The web
terminal's figure comes from the browser tests' `terminal` scenario (web/tests/browser.mjs),
which times the same thing in the page: a key into xterm.js until its echo is parsed.

    DOCKER_HOST=unix:///run/hostel/docker.sock benches/docker-exec-echo.py TENANT
"""
import os
import pty
import select
import statistics
import sys
import time


def read_until(fd, want, timeout=30.0):
    buf = b""
    end = time.monotonic() + timeout
    while want not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            sys.exit(f"no {want!r} from docker exec within {timeout}s: {buf[-200:]!r}")
        buf += os.read(fd, 4096)
    return buf


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: docker-exec-echo.py TENANT")
    tenant = sys.argv[1]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("docker", ["docker", "exec", "-it", "-u", tenant, "-e", "TERM=xterm-256color",
                             f"hostel-{tenant}", "bash", "-l"])
    read_until(fd, b"$ ")
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        os.write(fd, b"x")
        read_until(fd, b"x")
        times.append((time.perf_counter() - t0) * 1000)
    os.write(fd, b"\x15exit\n")
    times.sort()
    print(f"docker exec -it echo: median {statistics.median(times):.2f} ms, "
          f"p90 {times[int(len(times) * 0.9) - 1]:.2f} ms ({len(times)} keys)")
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
