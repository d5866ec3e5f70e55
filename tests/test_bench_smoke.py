"""The speed benchmark runs end to end and reports every figure it promises (no timing thresholds).

One ``python -m bench.speed --quick`` run in a subprocess (two fresh worker processes: ours and the
seed architecture) feeds all the checks below; timings depend on the machine, so only their
presence and sign are checked, never their size.
"""

from __future__ import annotations

import pytest
from conftest import PROJECT_ROOT, run_bench  # noqa: E402

SHARED_FACES = PROJECT_ROOT.parent / "shared" / "data" / "faces"
STAGES = ("decode", "faces", "model", "overlay", "total")
pytestmark = pytest.mark.slow  # one quick benchmark run: two worker processes, about 80 s


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    doc, table = run_bench("speed", "--repeats", "2", out=tmp_path_factory.mktemp("bench") / "speed.json")
    return {"report": doc, "file": doc, "table": table}


def positive(x) -> bool:
    return isinstance(x, (int, float)) and x > 0


def test_stdout_and_out_file_hold_the_same_report(bench):
    assert bench["report"] == bench["file"]
    assert set(bench["report"]) >= {"meta", "ours", "seed", "vs_seed", "targets"}


@pytest.mark.parametrize("pipeline", ["ours", "seed"])
def test_each_pipeline_reports_load_cold_start_latency_throughput_and_memory(bench, pipeline):
    r = bench["report"][pipeline]
    assert positive(r["model_load_s"]) and positive(r["import_s"]) and positive(r["detector_init_s"])
    assert positive(r["cold_start"]["cold_start_s"]) and r["cold_start"]["mode"] in ("process", "app")
    e2e = r["e2e"][bench["report"]["meta"]["headline_photo"]]
    for stage in STAGES:
        assert positive(e2e["stages_ms"][stage]["p50"]), stage
        assert e2e["stages_ms"][stage]["p95"] >= e2e["stages_ms"][stage]["p50"]
    assert e2e["faces_found"] == 1  # the astronaut: one face
    assert positive(r["scan"]["images_per_s"]) and positive(r["scan"]["crops_per_s"])
    assert r["scan"]["face_crops"] >= r["scan"]["images"] > 0
    assert positive(r["model_only"]["crops_per_s"])
    assert positive(r["peak_rss_mb"]) and r["peak_rss_mb"] >= r["rss_after_load_mb"] > 0


def test_the_seed_is_the_seed_architecture(bench):
    seed, ours = bench["report"]["seed"]["model"], bench["report"]["ours"]["model"]
    assert seed["architecture"] == "efficientnetv2b0" and seed["input_size"] == 256
    assert ours["architecture"] != seed["architecture"]


def test_every_comparison_has_both_values_and_a_ratio(bench):
    vs = bench["report"]["vs_seed"]
    assert {"model_load_s", "cold_start_s", "e2e_p50_ms", "e2e_p95_ms", "scan_images_per_s", "scan_crops_per_s",
            "peak_rss_mb"} <= set(vs)
    for name, v in vs.items():
        assert positive(v["ours"]) and positive(v["seed"]) and positive(v["speedup"]), name


def test_targets_are_reported_not_enforced(bench):
    targets = bench["report"]["targets"]
    assert set(targets) == {"e2e_p50_ms", "scan_crops_per_s", "cold_start_s", "speedup_vs_seed"}
    for name, v in targets.items():
        op, number = v["target"].split()
        assert positive(v["value"]) and op in ("<=", ">="), name
        # "met" is the comparison itself, not just some boolean
        assert v["met"] is (v["value"] <= float(number) if op == "<=" else v["value"] >= float(number)), name


def test_face_detector_candidates_report_speed_and_recall(bench):
    fd = bench["report"]["ours"]["face_detectors"]
    names = [n for n in fd if not n.startswith("_")]
    assert any(n.startswith("mtcnn@") for n in names) and any(n.startswith("haar@") for n in names)
    sets = {"package"} | ({"shared_val"} if (SHARED_FACES / "manifest.csv").is_file() else set())
    for name in names:
        assert sets <= set(fd[name]), name
        for v in fd[name].values():
            assert positive(v["ms_per_image"]["p50"]) and 0.0 <= v["recall"] <= 1.0
    # the package photos are portraits: the default detector finds every face
    assert fd["mtcnn@480"]["package"]["recall"] == 1.0
    assert fd["_default"]["name"] == "mtcnn"


def test_a_short_table_goes_to_stderr(bench):
    assert "speedup" in bench["table"] and "e2e_p50_ms" in bench["table"] and "face detector" in bench["table"]
