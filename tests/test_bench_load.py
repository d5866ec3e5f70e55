"""bench/load.py without a server: its help, its request mix and its arithmetic (no timings asserted)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def load():
    import bench.load

    return bench.load


def test_help_explains_every_flag():
    out = subprocess.run([sys.executable, "-m", "bench.load", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=True).stdout
    for flag in ("--clients", "--requests", "--sequential", "--bad-fraction", "--cam", "--warmup", "--rss-samples",
                 "--port", "--model-dir", "--startup-timeout", "--request-timeout", "--seed", "--out", "--quiet"):
        assert flag in out
    assert "127.0.0.1" in out


def test_bad_arguments_are_refused(load):
    with pytest.raises(SystemExit):
        load.main(["--clients", "0"])
    with pytest.raises(SystemExit):
        load.main(["--bad-fraction", "1.5"])


def test_payloads_cover_the_hostile_matrix(load, tmp_path):
    payloads = load.write_payloads(tmp_path)
    assert {p.name for p in payloads} >= {"astronaut", "grace_hopper", "decompression_bomb", "pdf_as_jpg"}
    assert all((tmp_path / p.path).is_file() for p in payloads)
    good, bad = [p for p in payloads if p.good], [p for p in payloads if not p.good]
    assert len(good) > 5 and len(bad) > 5
    assert all(not p.good for p in load.plan(payloads, 50, 1.0, random.Random(0)))
    assert all(p.good for p in load.plan(payloads, 50, 0.0, random.Random(0)))
    mixed = load.plan(payloads, 400, 0.3, random.Random(0))
    assert 80 < sum(not p.good for p in mixed) < 160


def test_summary_counts_each_kind_of_outcome(load):
    out = load.Outcome
    outcomes = [
        out("astronaut", True, 0.5, verdict=True),
        out("astronaut", True, 0.7, verdict=False, error_message="Something went wrong"),  # a good failure
        out("pdf_as_jpg", False, 0.1, error_message="This file is a PDF document, not an image."),
        out("empty", False, 0.1, verdict=True),  # a bad input that was not refused
        out("bmp", True, 9.0, transport_error="TimeoutError: ..."),
    ]
    s = load.summarize(outcomes, seconds=2.0)
    assert (s["requests"], s["good"], s["bad"]) == (5, 3, 2)
    assert s["good_failures"] == 1 and s["good_failure_examples"][0]["error"] == "Something went wrong"
    assert s["bad_answered_with_message"] == 1 and s["bad_not_refused"] == ["empty"]
    assert s["transport_errors"] == 1
    assert s["latency_ms"]["all"]["n"] == 4  # transport errors are not latencies
    assert s["latency_ms"]["bad"]["max"] == 100.0
    assert s["requests_per_s"] == 2.5
    assert load.growth_pct(100.0, 110.0) == 10.0 and load.growth_pct(0.0, 5.0) is None
