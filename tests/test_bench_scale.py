"""The scale benchmark runs end to end and reports every figure it promises (no timing thresholds).

One ``python -m bench.scale --quick`` run (the local engine and a one-actor Ray pool, each in a fresh
process, on a handful of images): timings depend on the machine, so only their presence and sign
are checked -- and that Ray's records equal the local engine's.
"""

from __future__ import annotations

import pytest
from conftest import run_bench  # noqa: E402

pytestmark = pytest.mark.slow  # two fresh processes loading TensorFlow, one starting Ray: about a minute


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    doc, _ = run_bench("scale", "--shared-n", "2", out=tmp_path_factory.mktemp("scale") / "scale.json")
    return doc


def positive(x) -> bool:
    return isinstance(x, (int, float)) and x > 0


def test_both_engines_report_startup_throughput_and_cores(report):
    for name in ("local", "ray_1"):
        r = report[name]
        assert positive(r["startup_s"]) and positive(r["crops_per_s"]) and positive(r["cores_used"]), name
        assert r["files"] == report["meta"]["files_per_run"] and r["face_crops"] >= r["files"]
    ray = report["ray_1"]
    assert ray["actors"] == 1 and positive(ray["ray_init_s"]) and ray["startup_s"] >= ray["ray_init_s"]
    assert len(ray["per_actor"]) == 1 and ray["blocks"] >= 1
    assert ray["overhead_vs_local"] == pytest.approx(1 - ray["crops_per_s"] / report["local"]["crops_per_s"], abs=1e-3)


def test_ray_records_are_the_local_records(report):
    assert report["records_identical"] == {"ray_1": True}


def test_the_machine_load_and_targets_are_recorded(report):
    meta = report["meta"]
    assert isinstance(meta["busy_machine"], bool) and len(meta["machine_before"]["load_avg"]) == 3
    assert meta["model"]["version"] and meta["ray"]
    assert set(report["targets"]) == {"local_crops_per_s", "ray_1_overhead_vs_local", "ray_2_cores_used"}
    assert report["targets"]["ray_2_cores_used"]["met"] is None  # not run in the quick plan
    p = report["predict_only"]
    assert positive(p["full_forward_crops_per_s"]) and positive(p["predict_only_crops_per_s"])
    assert p["max_abs_diff"] < 1e-5  # the same probabilities either way
