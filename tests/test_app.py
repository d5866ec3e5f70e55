"""The Gradio app: its public API through gradio_client on a live server, and its small helpers.

One server per module (model load and launch cost seconds); the model is a placeholder that
gets replaced, so the tests check shapes, ranges, keys and messages, never particular scores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from servers import serve

import app
from detector.config import Limits
from detector.inference.results import DetectionResult, FaceResult


@pytest.fixture(scope="module")
def server(detector):
    demo = app.build_demo(detector)
    with serve(demo) as url:
        yield demo, url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[1], verbose=False)


def _save(tmp_path: Path, name: str, rgb: np.ndarray) -> str:
    p = tmp_path / name
    Image.fromarray(rgb).save(p, quality=95)
    return str(p)


def _detect(client, path: str, cam: str | None = None) -> dict:
    from gradio_client import handle_file

    if cam is None:
        return client.predict(handle_file(path), api_name="/detect")
    return client.predict(image=handle_file(path), cam_method=cam, api_name="/detect")


def _assert_faces_valid(res: dict, width: int, height: int) -> None:
    assert res["error"] is None
    assert res["image_size"] == [width, height]
    assert 0.0 <= res["p_fake"] <= 1.0 and res["label"] in {"real", "fake"}
    for face in res["faces"]:
        x, y, w, h = face["box"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height
        assert 0.0 <= face["p_fake"] <= 1.0
        assert face["label"] in {"real", "fake"}
    assert res["p_fake"] == max(f["p_fake"] for f in res["faces"])  # the most suspicious face decides


# --------------------------------------------------------------------- /detect on a live server


def test_api_lists_only_the_detect_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/detect", "/detect_video"}


@pytest.mark.parametrize("photo", ["astronaut", "hopper"])
def test_detect_finds_a_face_inside_the_photo(client, tmp_path, photo, request):
    rgb = request.getfixturevalue(photo)
    res = _detect(client, _save(tmp_path, f"{photo}.jpg", rgb))
    assert res["face_found"] is True and len(res["faces"]) >= 1
    _assert_faces_valid(res, rgb.shape[1], rgb.shape[0])
    assert res["message"].startswith(f"{len(res['faces'])} face")
    heat = np.asarray(res["faces"][0]["heatmap"])  # default method is Grad-CAM++
    assert heat.ndim == 2 and heat.min() >= 0.0 and heat.max() <= 1.0
    assert res["cam_method"] == "gradcam++"


def test_detect_with_heatmaps_off_returns_no_heatmap(client, tmp_path, astronaut):
    res = _detect(client, _save(tmp_path, "a.png", astronaut), cam="off")
    assert res["error"] is None and res["cam_method"] is None
    assert all(f["heatmap"] is None for f in res["faces"])


def test_detect_on_a_photo_without_face_says_so(client, tmp_path, no_face):
    res = _detect(client, _save(tmp_path, "coffee.jpg", no_face))
    assert res["error"] is None
    assert res["face_found"] is False
    assert "no face" in res["message"].lower()
    assert 0.0 <= res["p_fake"] <= 1.0


def test_text_file_named_jpg_is_refused_with_json_and_server_keeps_serving(client, tmp_path, astronaut):
    bad = tmp_path / "holiday.jpg"
    bad.write_text("these are my holiday notes, not a photo\n")
    res = _detect(client, str(bad))
    assert isinstance(res["error"], str) and "text file" in res["error"]
    assert res["message"] == res["error"] and "Traceback" not in res["error"]
    assert res["faces"] == [] and res["p_fake"] is None
    good = _detect(client, _save(tmp_path, "after.jpg", astronaut))
    assert good["error"] is None and good["face_found"] is True


def test_unknown_cam_method_is_refused_with_json(client, tmp_path, astronaut):
    res = _detect(client, _save(tmp_path, "a.jpg", astronaut), cam="saliency")
    assert "gradcam" in res["error"]


# --------------------------------------------------------------------- /detect_video


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 8.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def test_detect_video_scores_sampled_frames(client, tmp_path, astronaut):
    from gradio_client import handle_file

    base = cv2.resize(astronaut, (384, 384))
    frames = [np.roll(base, 4 * i, axis=1) for i in range(8)]  # a slow pan
    video = tmp_path / "clip.mp4"
    _write_video(video, frames)
    res = client.predict(video=handle_file(str(video)), max_frames=4, top_k=2, api_name="/detect_video")
    assert res["error"] is None
    assert res["n_frames_total"] == 8 and res["top_k"] == 2
    assert 1 <= len(res["frames"]) <= 4
    assert [f["index"] for f in res["frames"]] == sorted(f["index"] for f in res["frames"])
    scored = [f["p_fake"] for f in res["frames"] if f["p_fake"] is not None]
    assert scored, "the astronaut's face should be found in some frame"
    assert all(0.0 <= p <= 1.0 for p in scored)
    assert 0.0 <= res["p_fake"] <= 1.0 and res["label"] in {"real", "fake"}
    assert res["p_fake"] <= max(scored) + 1e-6  # a mean of the top-k frames
    assert res["file_name"] == "clip.mp4" and "path" not in res  # no server temp path leaks to clients


def test_detect_video_refuses_a_non_video_with_json(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    res = client.predict(handle_file(str(bad)), 4, 2, api_name="/detect_video")
    assert isinstance(res["error"], str) and res["error"]


# --------------------------------------------------------------------- privacy and ops settings


def test_app_is_configured_for_privacy_and_bounded_load(server):
    import os

    demo, _ = server
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert demo.analytics_enabled is False
    assert demo.delete_cache == (app.CACHE_SECONDS, app.CACHE_SECONDS)
    assert demo._queue.default_concurrency_limit == app.CONCURRENCY
    assert demo._queue.max_size == app.QUEUE_SIZE
    assert app.launch_kwargs(Limits())["max_file_size"] == Limits().max_upload_bytes
    # Every event that runs the model shares one concurrency group, so the limit holds for all together.
    model_fns = [f for f in demo.fns.values() if str(f.api_name).startswith(("detect", "video", "lambda"))]
    assert len(model_fns) >= 7
    assert {(f.concurrency_id, f.concurrency_limit) for f in model_fns} == {("model", app.CONCURRENCY)}
    # No flagging anywhere: no flag component, event or endpoint.
    assert not any("flag" in c["type"].lower() for c in demo.config["components"])
    assert not any("flag" in str(d.get("api_name") or "").lower() for d in demo.config["dependencies"])


def test_cli_flags_default_to_loopback_and_read_the_environment(monkeypatch):
    for var in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "FDET_SHARE", "FDET_GAME_DIR"):
        monkeypatch.delenv(var, raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.share, args.game_dir) == ("127.0.0.1", 7860, False, None)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9123")
    monkeypatch.setenv("FDET_SHARE", "1")
    monkeypatch.setenv("FDET_GAME_DIR", "/data/game")
    args = app.parse_args(["--host", "0.0.0.0"])
    assert (args.host, args.port, args.share, args.game_dir) == ("0.0.0.0", 9123, True, "/data/game")


def test_readme_front_matter_makes_a_gradio_space_on_python_311():
    readme = (Path(app.__file__).resolve().parent / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\n")
    meta = dict(line.split(": ", 1) for line in readme[4:].split("\n---\n", 1)[0].splitlines())
    import gradio

    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == gradio.__version__  # the Space runs the version the tests ran
    assert meta["python_version"].strip('"') == "3.11"
    assert {"title", "emoji", "license", "short_description"} <= set(meta)


def test_start_with_a_broken_model_folder_ends_with_one_sentence(tmp_path):
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(SystemExit) as exit_info:
        app.main(["--model-dir", str(tmp_path)])
    message = str(exit_info.value.code)
    assert message.startswith("app.py: ") and "not valid JSON" in message and "Traceback" not in message


@pytest.mark.parametrize("value", ["abc", "2.5", "0", "-3"])
def test_start_with_a_bad_limit_variable_names_it_in_one_sentence(monkeypatch, value):
    monkeypatch.setenv("FDET_MAX_FACES", value)
    with pytest.raises(SystemExit) as exit_info:
        app.main([])
    message = str(exit_info.value.code)
    assert message.startswith("app.py: environment variable FDET_MAX_FACES must be") and repr(value) in message


def test_limit_variables_accept_whole_numbers_with_underscores(monkeypatch):
    from detector.config import Limits

    monkeypatch.setenv("FDET_MAX_UPLOAD_BYTES", " 5_000_000 ")
    assert Limits.from_env().max_upload_bytes == 5_000_000


# --------------------------------------------------------------------- UI adapters


def _result(p: float, label: str, found: bool = True) -> DetectionResult:
    face = FaceResult(box=[10, 20, 30, 40], p_fake=p, label=label)
    return DetectionResult(faces=[face], label=label, p_fake=p, face_found=found, message="m", notes=[],
                           image_size=[100, 100], model={}, cam_method=None, timings_ms={})


def test_verdict_heading_follows_the_threshold_not_the_larger_probability():
    # P(fake) = 0.52 but below a 0.53 threshold: the verdict is real although P(fake) > P(real).
    value = app.verdict_value(_result(0.52, "real"))
    assert value.label == "likely REAL"
    conf = {c.label: c.confidence for c in value.confidences}
    assert conf == {"P(fake)": 0.52, "P(real)": 0.48}
    assert app.verdict_value(_result(0.9, "fake")).label == "likely FAKE"


def test_about_tab_quotes_this_apps_cache_cleaner(server):
    demo, _ = server
    markdown = [str(c.get("props", {}).get("value", "")) for c in demo.config["components"] if c["type"] == "markdown"]
    about = [m for m in markdown if "Privacy: what happens to your upload" in m]
    assert len(about) == 1 and f"every {app.CACHE_SECONDS // 60} minutes" in about[0]
