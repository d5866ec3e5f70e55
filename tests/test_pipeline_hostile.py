"""The hostile matrix through every front end: Detector.analyze, the scan CLI, the Gradio API, the REST
endpoint, Streamlit.

Each bad case must come back as its typed error (or a JSON/record ``error`` with the same human
message), each good case as a result, and the server must keep answering afterwards.  Heatmaps are
off (``cam_method=None`` / "off") wherever they do not matter, to keep the module fast; one
detector (the session fixture) and one Gradio server serve the whole module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT
from servers import serve

from bench.hostile_inputs import ASTRONAUT_FACE_CENTRE, CASE_BY_NAME, CASES, face_grid
from detector.config import Limits
from detector.errors import DetectorError, ImageError
from detector.inference.results import error_dict
from detector.ui.guard import guarded

IDS = [c.name for c in CASES]
RESULT_KEYS = set(error_dict("x"))


def expected_message(detector, case) -> str:
    """What the detector says about a bad case: every front end must pass exactly this on."""
    with pytest.raises(case.error) as info:
        detector.analyze(case.data, cam_method=None, render_overlay=False)
    return str(info.value)


def check_good_json(d: dict, case) -> None:
    """A JSON result (to_dict, /detect, scan record) for a case that must succeed."""
    assert d["error"] is None, d["error"]
    assert d["label"] in ("real", "fake") and 0.0 <= d["p_fake"] <= 1.0
    assert d["message"]
    if case.note:
        assert any(case.note in n for n in d["notes"]), d["notes"]


# ------------------------------------------------------------------ Detector.analyze


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_detector_answers_every_case(detector, case):
    if not case.ok:
        with pytest.raises(case.error) as info:
            detector.analyze(case.data, cam_method=None)
        assert str(info.value).strip()
        return
    res = detector.analyze(case.data, cam_method=None)
    d = res.to_dict()
    json.dumps(d)  # serialisable as it stands
    assert set(d) == RESULT_KEYS
    check_good_json(d, case)
    assert res.overlay is not None and res.overlay.shape[1] == res.image_size[0]
    assert res.overlay.shape[0] >= res.image_size[1]  # the photo, and the heat legend under it when drawn
    if case.expect.face is not None:
        assert res.face_found is case.expect.face, res.message
    if not res.face_found:
        # Said once, in the message; the verdict is its own state, not "real" or "fake".
        assert res.message.startswith("No face found: the image was not assessed as a face")
        assert not any("face" in n.lower() for n in res.notes)
        assert res.verdict == d["verdict"] == "no_face" and d["faces"][0]["verdict"] == "no_face"
    else:
        assert d["verdict"] in ("fake", "real", "uncertain")


def test_exif_rotated_photo_gets_its_face_box_on_the_upright_image(detector):
    res = detector.analyze(CASE_BY_NAME["exif_rotated_jpeg"].data, cam_method=None, render_overlay=False)
    assert res.face_found and res.image_size == [512, 512]
    x, y, w, h = res.faces[0].box
    cx, cy = ASTRONAUT_FACE_CENTRE
    assert abs(x + w / 2 - cx) < 25 and abs(y + h / 2 - cy) < 25, res.faces[0].box


def test_twenty_faces_are_found_and_each_is_scored(detector):
    res = detector.analyze(CASE_BY_NAME["twenty_faces"].data, cam_method=None, render_overlay=False)
    assert 16 <= len(res.faces) <= 20  # MTCNN finds all 20 today; leave room for another finder
    assert res.faces_skipped == 0
    assert res.message.startswith(f"{len(res.faces)} faces found")
    centres = {((f.box[0] + f.box[2] // 2) // 128, (f.box[1] + f.box[3] // 2) // 128) for f in res.faces}
    assert len(centres) == len(res.faces)  # one box per grid tile, no duplicates


def test_max_faces_limit_scores_only_the_largest_and_says_so(detector, monkeypatch):
    monkeypatch.setattr(detector, "limits", Limits(max_faces=5))
    everyone = detector.find_faces(face_grid())
    res = detector.analyze(CASE_BY_NAME["twenty_faces"].data, cam_method=None, render_overlay=False)
    assert len(res.faces) == 5
    assert res.faces_skipped == len(everyone) - 5 >= 11
    assert f"{res.faces_skipped} more small faces were not scored (limit 5)" in res.message
    areas = [f.box[2] * f.box[3] for f in res.faces]
    assert areas == sorted(areas, reverse=True)


def test_max_faces_from_env_reaches_a_new_detector_settings(monkeypatch):
    from detector.config import Settings

    monkeypatch.setenv("FDET_MAX_FACES", "2")
    assert Settings().limits.max_faces == 2


def test_detector_keeps_working_after_the_whole_matrix(detector, astronaut):
    for case in CASES:
        try:
            detector.analyze(case.data, cam_method=None, render_overlay=False)
        except ImageError:
            pass
    res = detector.analyze(astronaut, cam_method="gradcam++")
    assert res.face_found and res.faces[0].heatmap is not None


# ------------------------------------------------------------------ the scan CLI


SUFFIX = {".jpg", ".png", ".gif", ".tif", ".webp", ".bmp"}


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    """Every case as a file, under the (often lying) name a browser would send."""
    folder = tmp_path_factory.mktemp("uploads")
    for i, case in enumerate(CASES):
        assert Path(case.filename).suffix in SUFFIX
        (folder / f"{i:02d}_{case.filename}").write_bytes(case.data)
    return folder


def case_of(path: str):
    return CASES[int(Path(path).name[:2])]


def test_scan_cli_gives_one_record_per_file_with_messages_for_bad_ones(detector, case_folder, tmp_path, capsys):
    scan = pytest.importorskip("detector.batch.scan")
    status = scan.main([str(case_folder), "--no-progress", "--out", str(tmp_path / "out")], detector=detector)
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(Path(r["path"]).name for r in records) == sorted(p.name for p in case_folder.iterdir())
    fake_found = any(r["label"] == "fake" for r in records)
    unreadable = any(r["error"] for r in records)  # the hostile cases include files that cannot be read
    assert status == (scan.EXIT_FAKE_FOUND if fake_found else scan.EXIT_UNREADABLE if unreadable else scan.EXIT_CLEAN)
    for r in records:
        case = case_of(r["path"])
        if case.ok:
            check_good_json(r, case)
            if case.expect.face is not None:
                assert (r["n_faces"] > 0) is case.expect.face, r["message"]
        else:
            assert r["error"] == expected_message(detector, case), r
            assert r["label"] is None and r["p_fake"] is None
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "Traceback" not in out + err and report


# ------------------------------------------------------------------ the Gradio app


@pytest.fixture(scope="module")
def gradio_client(detector):
    if not (PROJECT_ROOT / "app.py").is_file():
        pytest.skip("app.py does not exist")
    from gradio_client import Client

    import app

    with serve(app.build_demo(detector, warmup=False)) as url:
        client = Client(url, verbose=False)
        client.fdet_url = url  # the REST endpoint is on the same server
        yield client


def _post(client, folder: Path, i: int) -> dict:
    from gradio_client import handle_file

    path = folder / f"{i:02d}_{CASES[i].filename}"
    return client.predict(handle_file(str(path)), "off", api_name="/detect")


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gradio_detect_api_answers_every_case(gradio_client, case_folder, detector, i):
    case = CASES[i]
    d = _post(gradio_client, case_folder, i)
    assert set(d) == RESULT_KEYS
    if case.ok:
        check_good_json(d, case)
        if case.expect.face is not None:
            assert d["face_found"] is case.expect.face, d["message"]
    else:
        assert d["error"] == d["message"] == expected_message(detector, case)
        assert d["label"] is None and d["faces"] == []


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_rest_endpoint_answers_every_case_with_its_status(gradio_client, case_folder, detector, i):
    import requests

    from detector.ui.rest import status_for

    case = CASES[i]
    r = requests.post(gradio_client.fdet_url + "api/v1/detect", data={"cam_method": "off"}, timeout=120,
                      files={"image": (case.filename, (case_folder / f"{i:02d}_{case.filename}").read_bytes())})
    d = r.json()
    assert set(d) == RESULT_KEYS
    if case.ok:
        assert r.status_code == 200
        check_good_json(d, case)
    else:
        assert r.status_code == status_for(case.error("")) and r.status_code in (400, 413, 415)
        assert d["error"] == d["message"] == expected_message(detector, case)


def test_gradio_keeps_answering_normal_requests_after_the_matrix(gradio_client, case_folder):
    for i, case in enumerate(CASES):
        if not case.ok:
            _post(gradio_client, case_folder, i)
    d = _post(gradio_client, case_folder, IDS.index("astronaut"))
    assert d["error"] is None and d["face_found"]


# ------------------------------------------------------------------ the Streamlit page


@pytest.fixture(scope="module")
def streamlit_page(detector):
    if not (PROJECT_ROOT / "streamlit_app.py").is_file():
        pytest.skip("streamlit_app.py does not exist")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.sidebar.radio[0].set_value("off").run()  # heatmaps off: faster, and not under test here
    return at


# The page hands the uploaded bytes straight to the loader, so every bad case and a few good ones
# with notes or no face are enough here (each AppTest run costs a second or two).
STREAMLIT_CASES = [c for c in CASES if not c.ok or c.name in ("animated_gif", "rgba_png", "exif_rotated_jpeg",
                                                                 "no_face")]


@pytest.mark.parametrize("case", STREAMLIT_CASES, ids=[c.name for c in STREAMLIT_CASES])
def test_streamlit_page_answers_bad_cases_and_a_few_good_ones(streamlit_page, detector, case):
    at = streamlit_page
    at.file_uploader[0].upload(case.filename, case.data, "application/octet-stream")
    at.run()
    assert not at.exception
    if case.ok:
        assert not at.error, [e.value for e in at.error]
        result = json.loads(at.json[0].value)
        check_good_json(result, case)
        headlines = [h.proto.body for h in at.html if "fdet-headline" in h.proto.body]
        assert len(headlines) == 1 and f'data-verdict="{result["verdict"]}"' in headlines[0]
        if case.note:  # the loader's notes are shown under the headline
            assert any(case.note in m.value for m in at.markdown)
    else:
        assert [e.value for e in at.error] == [f"Could not analyse this file: {expected_message(detector, case)}"]


def test_front_end_errors_are_detector_errors(detector):
    assert all(issubclass(c.error, DetectorError) for c in CASES if not c.ok)
    # What every front end runs: the guarded call must see each bad case as a refusal (a
    # DetectorError with its own sentence), never as an unexpected failure.
    for case in CASES:
        if case.ok:
            continue
        out = guarded(lambda c=case: detector.analyze(c.data, cam_method=None, render_overlay=False),
                      "unexpected", case.name)
        assert out.refused and out.error == expected_message(detector, case), case.name
