"""`numstab explore` as a process: it prints its URL, stops cleanly on Ctrl-C, and a taken port is one
line and exit 2."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("bokeh", reason="bokeh is the explore extra (in dev)")

STARTUP_S = 90.0  # imports (torch, bokeh) on a busy 2-core machine


def start_explore(*args: str) -> tuple[subprocess.Popen, str]:
    """Start `numstab explore --no-browser ARGS`; return the process and the URL it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "numstab", "explore", "--no-browser", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                return proc, found.group(0)
            if not line:  # the process ended
                break
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"numstab explore printed no URL in {STARTUP_S:.0f} s: {err[-2000:]}")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C, as a terminal sends it; return the exit status and stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_ctrl_c_stops_cleanly() -> None:
    proc, url = start_explore("--quiet")  # quiet: the URL alone on stdout, nothing on stderr
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))), timeout=5):
        pass  # it listens
    code, err = stop(proc)
    assert code in (0, 130), err
    assert err == ""  # no traceback, no warning


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "numstab", "explore", "--no-browser", "--port", str(port)],
            capture_output=True, text=True, timeout=STARTUP_S, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"numstab: error: port {port} on 127.0.0.1"), lines
    assert result.stdout == ""


def test_a_port_out_of_range_is_one_line_and_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "numstab", "explore", "--port", "70000"],
                            capture_output=True, text=True, timeout=STARTUP_S)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--port" in result.stderr
