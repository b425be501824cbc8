"""Benchmark: one update of `numstab explore`, from a control's new value to the replaced plot data.

TARGET: the median over 20 changes (10 of sigma_w, 10 of depth, interleaved) is <= 200 ms at width 256,
depth about 100, 4 seeds, measured in the browser: the time from setting the control's value in the
page (what a slider drag does) until the page holds every plot of the refresh it caused (the app changes
its hidden "revision" last; each change reaches the page as its own message, in order).

Baseline, in this process: the same 20 settings through numstab.lab.explorer.explore with its network
cache emptied before each call (every update draws its 4 x ~100 weight matrices afresh through
numstab.init.apply_), against explore() with the cache warm (what the app does); the ratio is printed.

The app runs as `numstab explore --no-browser` in a child process, the page in Debian's chromium
(/usr/bin/chromium) driven by Playwright. Single-threaded torch (OMP_NUM_THREADS=1 unless set), as the
app runs by default. On a shared machine the wall time also counts the other jobs (and chromium painting
on the same 2 cores), so the app process's CPU time per change (from /proc) and the load average are
printed too. Exits 1 if the target is missed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/explore_update.py
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from numstab.lab import explorer  # noqa: E402

TARGET_MS = 200.0
CHROMIUM = os.environ.get("NUMSTAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DEPTH = 100
#: (control, value) pairs, applied in order after the warm-up at depth 100.
CHANGES = [
    change
    for k in range(10)
    for change in (("weight_std", round(0.9 + 0.05 * k, 2)), ("depth", DEPTH - 1 - k % 5))
]

_TIMED_CHANGE = """async ([name, value]) => {
  const doc = Bokeh.documents[0];
  const revision = doc.get_model_by_name("revision");
  const start = Number(revision.text);
  const t0 = performance.now();
  doc.get_model_by_name(name).value = value;
  while (Number(revision.text) === start) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
  return performance.now() - t0;
}"""


def _start_app() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "numstab", "explore", "--no-browser"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not found:
        proc.kill()
        raise SystemExit(f"numstab explore printed no URL: {line!r}")
    return proc, found.group(0)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_browser() -> tuple[list[float], float, float]:
    """Milliseconds per change in the page, the app's mean CPU milliseconds per change, and the first
    page's load time in seconds."""
    from playwright.sync_api import sync_playwright

    proc, url = _start_app()
    try:
        with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS
            )
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length && "
                                   "Number(Bokeh.documents[0].get_model_by_name('revision').text) > 0",
                                   timeout=120_000)
            load = time.perf_counter() - t0
            page.evaluate(_TIMED_CHANGE, ["depth", DEPTH])  # warm-up: the networks grow to 100 layers
            cpu = _cpu_seconds(proc.pid)
            times = [page.evaluate(_TIMED_CHANGE, list(change)) for change in CHANGES]
            cpu = (_cpu_seconds(proc.pid) - cpu) / len(CHANGES) * 1e3
            context.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    return times, cpu, load


def in_process() -> tuple[list[float], list[float]]:
    """Milliseconds of explore() per change: cache warm (the app), cache emptied first (baseline)."""
    settings = explorer.ExplorerSettings(depth=DEPTH)
    explorer.explore(settings)
    warm, cold = [], []
    for name, value in CHANGES:
        settings = explorer.ExplorerSettings(**{**settings.to_dict(), name: value})
        t0 = time.perf_counter()
        explorer.explore(settings)
        warm.append((time.perf_counter() - t0) * 1e3)
        explorer._draws.cache_clear()
        t0 = time.perf_counter()
        explorer.explore(settings)
        cold.append((time.perf_counter() - t0) * 1e3)
    return warm, cold


def main() -> int:
    browser, server_cpu, load = in_browser()
    warm, cold = in_process()
    median = statistics.median(browser)
    print(f"numstab explore, width 256, depth ~{DEPTH}, 4 seeds x 8 inputs, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}")
    print(f"first page load: {load:.2f} s")
    print(f"{'measure':<48} {'median ms':>10} {'min':>8} {'max':>8}")
    rows = [("browser: value set -> every plot replaced (target)", browser),
            ("explore() in process, networks cached (the app)", warm),
            ("explore() in process, networks drawn afresh", cold)]
    for label, values in rows:
        print(f"{label:<48} {statistics.median(values):>10.1f} {min(values):>8.1f} {max(values):>8.1f}")
    print(f"{'the app process, CPU time per change (mean)':<48} {server_cpu:>10.1f}")
    print(f"cached vs drawn afresh: {statistics.median(cold) / statistics.median(warm):.1f}x faster")
    ok = median <= TARGET_MS
    verdict = "met" if ok else "MISSED"
    print(f"target: median <= {TARGET_MS:.0f} ms in the browser: {verdict} ({median:.1f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
