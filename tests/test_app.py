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
    assert res["face_found"] is False and res["verdict"] == "no_face"
    assert "not assessed" in res["message"]
    assert 0.0 <= res["p_fake"] <= 1.0 and res["label"] in ("fake", "real")  # label kept for old clients


def test_detect_reads_the_uploaded_files_provenance(client, tmp_path, astronaut):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "portrait of an astronaut\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42")
    path = tmp_path / "generated.png"
    Image.fromarray(astronaut).save(path, pnginfo=info)
    res = _detect(client, str(path))
    prov = res["provenance"]
    assert prov["verdict"] == "ai-generated-declared" and prov["strength"] == "moderate"
    assert prov["findings"][0]["kind"] == "generator-metadata"
    plain = _detect(client, _save(tmp_path, "plain.jpg", astronaut))["provenance"]
    assert plain["verdict"] == "none" and plain["findings"] == [] and "proves nothing" in plain["summary"]


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


# --------------------------------------------------------------------- REST: POST /api/v1/detect over HTTP


def _post(url: str, name: str, data: bytes, **fields) -> tuple[int, dict]:
    import requests

    r = requests.post(url + "api/v1/detect", files={"image": (name, data)}, data=fields, timeout=120)
    return r.status_code, r.json()


def test_rest_endpoint_returns_the_same_json_as_the_gradio_endpoint(server, client, tmp_path, astronaut):
    path = _save(tmp_path, "astronaut.jpg", astronaut)
    status, rest = _post(server[1], "astronaut.jpg", Path(path).read_bytes())
    assert status == 200 and rest["error"] is None and rest["verdict"] in ("fake", "real", "uncertain")
    gradio = _detect(client, path)
    for key in ("timings_ms",):
        rest.pop(key), gradio.pop(key)
    assert rest == gradio  # faces, heatmaps, verdict, provenance: one result, two transports
    status, off = _post(server[1], "astronaut.jpg", Path(path).read_bytes(), cam_method="off")
    assert status == 200 and off["cam_method"] is None and off["faces"][0]["heatmap"] is None


@pytest.mark.parametrize(("name", "payload", "status", "words"), [
    ("notes.jpg", b"these are my holiday notes, not a photo\n", 415, "text file"),
    ("empty.jpg", b"", 400, "empty"),
    ("cut.jpg", None, 400, "truncated"),
])
def test_rest_refusals_get_their_http_status_and_one_sentence(server, tmp_path, astronaut, name, payload, status,
                                                               words):
    if payload is None:
        whole = Path(_save(tmp_path, "whole.jpg", astronaut)).read_bytes()
        payload = whole[:len(whole) // 3]
    got, body = _post(server[1], name, payload)
    assert got == status and words in body["error"] and body["message"] == body["error"]
    assert body["faces"] == [] and body["label"] is None and "\n" not in body["error"]


def test_rest_refuses_too_many_pixels_with_413_and_an_unknown_method_with_400(server, tmp_path, astronaut):
    from bench.hostile_inputs import png_bomb

    got, body = _post(server[1], "bomb.png", png_bomb())
    assert got == 413 and "30000 \u00d7 30000 pixels" in body["error"] and "the limit is" in body["error"]
    got, body = _post(server[1], "a.jpg", Path(_save(tmp_path, "a.jpg", astronaut)).read_bytes(), cam_method="x")
    assert got == 400 and "gradcam" in body["error"]


def test_rest_refuses_an_oversized_body_before_reading_it(server):
    import requests

    limit = Limits.from_env().max_upload_bytes
    r = requests.post(server[1] + "api/v1/detect", files={"image": ("big.jpg", b"\xff" * (limit + 200_000))},
                      timeout=120)
    assert r.status_code == 413 and "the limit is" in r.json()["error"]


def test_rest_has_openapi_docs_that_work_offline(server):
    import requests

    doc = requests.get(server[1] + "api/v1/openapi.json", timeout=30).json()
    op = doc["paths"]["/api/v1/detect"]["post"]
    assert {"200", "400", "413", "415"} <= set(op["responses"])
    assert "multipart/form-data" in op["requestBody"]["content"]
    page = requests.get(server[1] + "api/v1/docs", timeout=30)
    assert page.status_code == 200 and "POST /api/v1/detect" in page.text and "curl -F image=@" in page.text
    assert "<script" not in page.text and "cdn" not in page.text.lower()  # nothing to fetch


# --------------------------------------------------------------------- start-up


def test_a_busy_port_ends_at_once_in_one_sentence_that_says_how_to_choose_another():
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t = time.perf_counter()
        with pytest.raises(SystemExit) as exit_info:
            app.main(["--port", str(port)])
        assert time.perf_counter() - t < 2.0  # before the model is loaded
    message = str(exit_info.value.code)
    assert message == (f"app.py: port {port} on 127.0.0.1 is already in use; choose another one with --port N, "
                       "GRADIO_SERVER_PORT=N or `make run PORT=N`.")


def test_make_run_honours_port_and_gradio_server_port():
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(app.__file__).resolve().parent

    def run_line(env: dict, *args: str) -> str:
        # Under `make test` the parent make's MAKEFLAGS/MAKELEVEL would make this one print "Entering directory"
        # lines (and inherit its variables); the child must see the environment a user's shell gives it.
        dropped = ("PORT", "GRADIO_SERVER_PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
        full = {k: v for k, v in __import__("os").environ.items() if k not in dropped}
        out = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "run", *args],
                             cwd=root, env={**full, **env},
                             capture_output=True, text=True, check=True).stdout
        return out.strip().splitlines()[-1]

    assert run_line({}).endswith("--port 7860")
    assert run_line({"GRADIO_SERVER_PORT": "7862"}).endswith("--port 7862")
    assert run_line({"PORT": "7863", "GRADIO_SERVER_PORT": "7862"}).endswith("--port 7863")
    assert run_line({}, "PORT=7864").endswith("--port 7864")


# --------------------------------------------------------------------- the page's layout


def _components(demo, kind: str) -> list[dict]:
    return [c for c in demo.config["components"] if c["type"] == kind]


def test_pictures_have_fixed_heights_and_the_overlay_no_label_over_its_corner(server):
    demo, _ = server
    by_id = {c["props"].get("elem_id"): c["props"] for c in demo.config["components"] if c["props"].get("elem_id")}
    assert by_id["overlay"]["show_label"] is False  # a label there would cover the top-left face's caption
    for elem in ("overlay", "game", "game_overlay", "photo"):
        assert isinstance(by_id[elem]["height"], int), elem  # the page does not jump as image sizes change


def test_the_theme_uses_system_fonts_only():
    theme = app.launch_kwargs(Limits())["theme"]
    assert theme.font.startswith("system-ui") and "DejaVu Sans" in theme.font
    assert not theme._font_css  # no web font to fetch (the app runs offline)


def test_about_puts_the_plain_text_first_and_the_model_card_in_an_accordion(server):
    demo, _ = server
    accordions = [c["props"].get("label") for c in _components(demo, "accordion")]
    assert any("model card" in str(a).lower() for a in accordions)
    markdown = [str(c["props"].get("value", "")) for c in _components(demo, "markdown")]
    about = next(m for m in markdown if "What this detector can and cannot do" in m)
    assert about.lstrip().startswith("## What this detector can and cannot do") and "AUC" not in about


def test_about_tab_quotes_this_apps_cache_cleaner(server):
    demo, _ = server
    markdown = [str(c.get("props", {}).get("value", "")) for c in demo.config["components"] if c["type"] == "markdown"]
    about = [m for m in markdown if "Privacy: what happens to your upload" in m]
    assert len(about) == 1 and f"every {app.CACHE_SECONDS // 60} minutes" in about[0]
