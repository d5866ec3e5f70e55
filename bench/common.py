"""What the benchmarks share: statistics, memory, the photos, child processes and the app on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from detector.config import PROJECT_ROOT, SHARED_FACES  # noqa: F401 - re-exported for the benchmarks

HOST = "127.0.0.1"  # never anything else: these tools must not load-test someone's server

# ---------------------------------------------------------------------------- the speed benchmark's plan

SEED_ARCH, SEED_SIZE = "efficientnetv2b0", 256  # the architecture this project descends from
FULL = {"sizes": (256, 512, 1024, 2048), "group_grids": (3, 4),
        "e2e": ("astronaut_512", "hopper_512", "astronaut_1024", "astronaut_2048"),
        "mtcnn_sides": (480, 320, 256, 192, 160), "haar_sides": (640, 320), "eager_reference": True}
QUICK = {"sizes": (512,), "group_grids": (), "e2e": ("astronaut_512",), "mtcnn_sides": (480, 320),
         "haar_sides": (640,), "eager_reference": False}
HEADLINE_PHOTO = "astronaut_512"  # the single-face photo the targets refer to


def plan(quick: bool) -> dict[str, Any]:
    return QUICK if quick else FULL


# ---------------------------------------------------------------------------- statistics and memory


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: list[float], digits: int = 1) -> dict[str, float]:
    """p50, p95, mean, min and n of a non-empty list (min: the figure least disturbed by other work)."""
    return {"p50": round(percentile(values, 50), digits), "p95": round(percentile(values, 95), digits),
            "mean": round(statistics.fmean(values), digits), "min": round(min(values), digits), "n": len(values)}


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and everything it started, in MB (NaN when it is gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return round(total / 1e6, 1)


# ---------------------------------------------------------------------------- inputs and processes


def package_photos() -> dict[str, Any]:
    """The two portraits every install has: scikit-image's astronaut, matplotlib's Grace Hopper."""
    import matplotlib.cbook
    import numpy as np
    import skimage.data
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {"astronaut": skimage.data.astronaut(), "hopper": hopper}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def child_env() -> dict[str, str]:
    """The environment of every process a benchmark starts: offline, quiet, no analytics, never shared."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["FDET_SHARE"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class AppServer:
    """``python app.py`` on a loopback port, in its own process group; a context manager that always stops it.

    ``started_at`` is when the process was launched and ``ready_s`` how long its page took to answer,
    so cold starts are measured from the same clock.
    """

    def __init__(self, port: int | None = None, model_dir: str | Path | None = None, startup_timeout: float = 300.0,
                 log_path: Path | None = None):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}/"
        self.model_dir = model_dir
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.started_at = self.ready_s = None

    def __enter__(self) -> AppServer:
        cmd = [sys.executable, "app.py", "--host", HOST, "--port", str(self.port)]
        if self.model_dir:
            cmd += ["--model-dir", str(self.model_dir)]
        self._log = open(self.log_path, "w+b") if self.log_path else tempfile.TemporaryFile()  # noqa: SIM115
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=child_env(), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with status {self.proc.returncode} during start-up:\n"
                                   f"{self.log_tail()}")
            if time.perf_counter() - self.started_at > self.startup_timeout:
                raise RuntimeError(f"app.py did not answer on {self.url} within {self.startup_timeout:.0f} s:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    if resp.status == 200:
                        self.ready_s = time.perf_counter() - self.started_at
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)

    def log_tail(self, lines: int = 20) -> str:
        try:  # pread: the server shares this file's offset, which must not move under it
            fd = self._log.fileno()
            text = os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def rss_mb(self) -> float:
        return process_tree_rss_mb(self.proc.pid)

    def __exit__(self, *exc) -> None:
        """Stop the server and everything it started (its process group), politely first."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self._log.close()


# ---------------------------------------------------------------------------- how busy the machine was


def machine_load(top: int = 3) -> dict[str, Any]:
    """Load averages, CPU count and the few other processes using the most CPU right now (name and %)."""
    import psutil

    me = os.getpid()
    procs = list(psutil.process_iter(["pid", "name"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)  # the first call only starts the measurement
    time.sleep(0.5)
    busy = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.info["pid"] != me:
                busy.append((round(p.cpu_percent(None), 1), p.info["name"]))
    busy.sort(reverse=True)
    return {"load_avg": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count() or 1,
            "top_other_processes": [{"name": n, "cpu_percent": c} for c, n in busy[:top] if c > 1.0]}


def was_busy(start: dict[str, Any], end: dict[str, Any]) -> bool:
    """Whether something else competed for the CPU: a 1-minute load average above half the cores before the
    run (afterwards it counts the benchmark itself), or other processes using over half a core at either end."""
    others = max(sum(p["cpu_percent"] for p in m["top_other_processes"]) for m in (start, end))
    return start["load_avg"][0] > 0.5 * start.get("cpu_count", 1) or others > 50.0


def emit(report: dict[str, Any], out: str | Path | None) -> None:
    """Print a benchmark's JSON on stdout and, with ``out``, write the same text there."""
    text = json.dumps(report, indent=1)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    print(text)


def run_or_fail(run, args) -> dict[str, Any] | None:
    """``run(args)``, or None after printing the one-line reason a benchmark cannot run (RuntimeError)."""
    try:
        return run(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
