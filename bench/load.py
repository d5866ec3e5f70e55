"""Load test of the web app: many clients, good and hostile images, and the server's memory.

    python -m bench.load                            # 8 clients x 25 requests, concurrent
    python -m bench.load --clients 2 --requests 3   # a smoke run
    python -m bench.load --sequential 500           # one client, 500 requests: does memory grow?

Starts ``python app.py --host 127.0.0.1 --port N`` in a subprocess (so its memory is the
server's alone, measured with psutil over the process and its children), waits for it, then
drives the public ``/detect`` endpoint with ``gradio_client``.  The requests mix good photos
(the astronaut, Grace Hopper, and every "ok" case of ``bench/hostile_inputs.py``: CMYK, 16-bit,
animated, rotated, 20 faces...) with that matrix's bad cases (empty, truncated, PDF/ZIP/SVG named
.jpg, a decompression bomb, a 1x1 image...).

Prints one JSON object on stdout (and to ``--out``):

* ``requests``, ``good``/``bad`` counts and ``seconds``, ``requests_per_s``;
* ``good_failures`` -- good photos that did not get a verdict (must be 0), with examples;
* ``bad_answered_with_message`` -- hostile inputs answered with JSON ``error`` set (should equal
  ``bad``); ``bad_not_refused`` lists any that were not;
* ``transport_errors`` -- requests that raised in the client (HTTP error, queue full, timeout);
* ``latency_ms`` -- p50/p95/max overall and separately for good and bad inputs;
* ``server_rss_mb`` -- after start-up, after the warm-up requests and at the end, with the
  growth in percent over the warm-up baseline (TensorFlow's first-call caches are not a leak);
  ``--sequential`` also samples it along the way (``rss_series``).

Only 127.0.0.1 is ever contacted, the server is always stopped at the end, and nothing is
asserted: the numbers are for a person (or CI) to judge.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.config import CAM_METHODS, DEFAULT_CAM_METHOD

from .common import HOST, PROJECT_ROOT, AppServer, emit, percentile


@dataclass
class Payload:
    name: str
    path: str  # a file in the bench's temp folder, named as a browser would send it
    good: bool  # True: must get a verdict; False: must be refused with a message


@dataclass
class Outcome:
    payload: str
    good: bool
    seconds: float
    verdict: bool = False  # a label came back
    error_message: str | None = None  # JSON "error" of the answer
    transport_error: str | None = None  # the client call itself failed


# ------------------------------------------------------------------ payloads


def write_payloads(folder: Path) -> list[Payload]:
    """The hostile matrix plus the two package portraits, as files in ``folder``."""
    import numpy as np

    from .hostile_inputs import CASES, encode, hopper

    payloads = []
    for i, case in enumerate(CASES):
        path = folder / f"{i:02d}_{case.filename}"
        path.write_bytes(case.data)
        payloads.append(Payload(case.name, str(path), case.ok))
    path = folder / "grace_hopper.jpg"
    path.write_bytes(encode(np.ascontiguousarray(hopper()), "JPEG", quality=92))
    payloads.append(Payload("grace_hopper", str(path), True))
    return payloads


def plan(payloads: list[Payload], n: int, bad_fraction: float, rng: random.Random) -> list[Payload]:
    """``n`` requests: each bad with probability ``bad_fraction``, the file drawn uniformly within its kind."""
    good = [p for p in payloads if p.good]
    bad = [p for p in payloads if not p.good]
    return [rng.choice(bad if bad and rng.random() < bad_fraction else good) for _ in range(n)]


# ------------------------------------------------------------------ clients


def one_request(client, payload: Payload, cam: str, timeout: float) -> Outcome:
    from gradio_client import handle_file

    t = time.perf_counter()
    try:
        job = client.submit(handle_file(payload.path), cam, api_name="/detect")
        result = job.result(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a failed call is a result of the benchmark
        return Outcome(payload.name, payload.good, time.perf_counter() - t,
                       transport_error=f"{type(exc).__name__}: {str(exc)[:200]}")
    seconds = time.perf_counter() - t
    if not isinstance(result, dict):
        return Outcome(payload.name, payload.good, seconds, transport_error=f"unexpected answer {type(result).__name__}")
    return Outcome(payload.name, payload.good, seconds, verdict=result.get("label") in ("real", "fake"),
                   error_message=result.get("error"))


def make_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def run_concurrent(url: str, payloads: list[Payload], args: argparse.Namespace,
                   progress: bool) -> tuple[list[Outcome], float]:
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    done = [0]
    total = args.clients * args.requests
    plans = [plan(payloads, args.requests, args.bad_fraction, random.Random(args.seed + i)) for i in range(args.clients)]
    clients = [make_client(url) for _ in range(args.clients)]  # connected before the clock starts
    barrier = threading.Barrier(args.clients)

    def drive(i: int) -> None:
        barrier.wait()  # all clients start together
        for payload in plans[i]:
            out = one_request(clients[i], payload, args.cam, args.request_timeout)
            with lock:
                outcomes.append(out)
                done[0] += 1
                if progress and done[0] % max(1, total // 20) == 0:
                    print(f"  {done[0]}/{total} requests", file=sys.stderr)

    threads = [threading.Thread(target=drive, args=(i,), daemon=True) for i in range(args.clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return outcomes, time.perf_counter() - t


def run_sequential(server: AppServer, payloads: list[Payload], args: argparse.Namespace,
                   progress: bool) -> tuple[list[Outcome], float, list[dict[str, float]]]:
    client = make_client(server.url)
    requests = plan(payloads, args.sequential, args.bad_fraction, random.Random(args.seed))
    every = max(1, args.sequential // args.rss_samples)
    series = [{"request": 0, "rss_mb": server.rss_mb()}]
    outcomes = []
    t = time.perf_counter()
    for i, payload in enumerate(requests, start=1):
        outcomes.append(one_request(client, payload, args.cam, args.request_timeout))
        if i % every == 0 or i == len(requests):
            series.append({"request": i, "rss_mb": server.rss_mb()})
            if progress:
                print(f"  {i}/{len(requests)} requests, server RSS {series[-1]['rss_mb']} MB", file=sys.stderr)
    return outcomes, time.perf_counter() - t, series


def warm_up(url: str, payloads: list[Payload], n: int, cam: str, timeout: float) -> None:
    """A few requests of every kind before the memory baseline (first-call caches are not a leak)."""
    if n <= 0:
        return
    client = make_client(url)
    good = [p for p in payloads if p.good]
    order = good[:2] + payloads  # two good photos first, then a bit of everything
    for i in range(n):
        one_request(client, order[i % len(order)], cam, timeout)


# ------------------------------------------------------------------ the report


def latency(outcomes: list[Outcome]) -> dict[str, float | None]:
    ms = sorted(o.seconds * 1000 for o in outcomes)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {"n": len(ms), "p50": r(percentile(ms, 50)), "p95": r(percentile(ms, 95)), "max": r(ms[-1] if ms else None)}


def summarize(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    """The counts and latencies of a run (pure: the tests check it on made-up outcomes)."""
    answered = [o for o in outcomes if o.transport_error is None]
    good = [o for o in outcomes if o.good]
    bad = [o for o in outcomes if not o.good]
    good_failures = [o for o in good if o.transport_error is None and not (o.verdict and o.error_message is None)]
    bad_with_message = [o for o in bad if o.transport_error is None and isinstance(o.error_message, str)
                        and o.error_message.strip()]
    bad_not_refused = [o for o in bad if o.transport_error is None and o not in bad_with_message]
    transport = [o for o in outcomes if o.transport_error is not None]
    return {
        "requests": len(outcomes),
        "good": len(good),
        "bad": len(bad),
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(outcomes) / seconds, 2) if seconds > 0 else None,
        "good_failures": len(good_failures),
        "good_failure_examples": [{"payload": o.payload, "error": o.error_message} for o in good_failures[:5]],
        "bad_answered_with_message": len(bad_with_message),
        "bad_not_refused": [o.payload for o in bad_not_refused],
        "transport_errors": len(transport),
        "transport_error_examples": [{"payload": o.payload, "error": o.transport_error} for o in transport[:5]],
        "latency_ms": {"all": latency(answered), "good": latency([o for o in answered if o.good]),
                       "bad": latency([o for o in answered if not o.good])},
    }


def growth_pct(before: float, after: float) -> float | None:
    if not before or before != before or after != after:  # zero or NaN
        return None
    return round(100.0 * (after - before) / before, 2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8,
                   help="concurrent gradio_client clients, each in its own thread and session (default 8)")
    p.add_argument("--requests", type=int, default=25, help="requests sent by each client, one after the other (default 25)")
    p.add_argument("--sequential", type=int, default=0, metavar="N",
                   help="instead of the concurrent run, send N requests from one client and report the server's "
                        "memory growth (e.g. 500); 0 = off (default)")
    p.add_argument("--bad-fraction", type=float, default=0.3,
                   help="share of requests carrying a hostile/broken file from bench/hostile_inputs.py (default 0.3)")
    p.add_argument("--cam", default=DEFAULT_CAM_METHOD, choices=(*CAM_METHODS, "off"),
                   help="heatmap method asked of /detect (default gradcam++, what the web page uses; "
                        "'off' measures the plain forward pass)")
    p.add_argument("--warmup", type=int, default=None,
                   help="requests sent before the memory baseline and the clock start (default: one per "
                        "payload, so every image size and code path has been seen once)")
    p.add_argument("--rss-samples", type=int, default=10,
                   help="--sequential: how many times along the run the server's memory is sampled (default 10)")
    p.add_argument("--port", type=int, default=0, help="loopback port for the server (default: a free one)")
    p.add_argument("--model-dir", help="model folder passed to app.py --model-dir (default: the app's own default)")
    p.add_argument("--startup-timeout", type=float, default=300.0,
                   help="seconds to wait for the server to start answering (default 300)")
    p.add_argument("--request-timeout", type=float, default=180.0,
                   help="seconds one request may take before it counts as a transport error (default 180)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the order and mix of requests (default 0)")
    p.add_argument("--out", type=Path, help="also write the JSON report to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("clients", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.sequential < 0 or (args.warmup or 0) < 0 or args.rss_samples < 1:
        parser.error("--sequential and --warmup must be >= 0, --rss-samples >= 1")
    if not 0.0 <= args.bad_fraction <= 1.0:
        parser.error("--bad-fraction must be between 0 and 1")
    if not (PROJECT_ROOT / "app.py").is_file():
        parser.error(f"{PROJECT_ROOT / 'app.py'} does not exist")
    progress = not args.quiet

    with tempfile.TemporaryDirectory(prefix="fdet-load-") as tmp:
        payloads = write_payloads(Path(tmp))
        if progress:
            print(f"starting app.py on {HOST} ...", file=sys.stderr)
        t0 = time.perf_counter()
        with AppServer(args.port or None, args.model_dir, args.startup_timeout, Path(tmp) / "server.log") as server:
            startup_s = time.perf_counter() - t0
            rss_start = server.rss_mb()
            n_warm = len(payloads) + 2 if args.warmup is None else args.warmup
            warm_up(server.url, payloads, n_warm, args.cam, args.request_timeout)
            rss_warm = server.rss_mb()
            if progress:
                print(f"server up in {startup_s:.1f} s, RSS {rss_start} MB ({rss_warm} MB after warm-up)",
                      file=sys.stderr)
            series = None
            if args.sequential:
                outcomes, seconds, series = run_sequential(server, payloads, args, progress)
            else:
                outcomes, seconds = run_concurrent(server.url, payloads, args, progress)
            rss_end = server.rss_mb()
            alive = server.proc.poll() is None

    report: dict[str, Any] = {
        "mode": "sequential" if args.sequential else "concurrent",
        "clients": 1 if args.sequential else args.clients,
        "requests_per_client": args.sequential or args.requests,
        "cam": args.cam,
        "bad_fraction": args.bad_fraction,
        **summarize(outcomes, seconds),
        "server_alive_at_end": alive,
        "server_startup_s": round(startup_s, 1),
        "server_rss_mb": {"after_start": rss_start, "after_warmup": rss_warm, "end": rss_end,
                          "growth_pct_over_warmup": growth_pct(rss_warm, rss_end),
                          "growth_pct_over_start": growth_pct(rss_start, rss_end)},
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
    }
    if series is not None:
        report["rss_series"] = series
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
