"""The web app's process: a fast ``--help``, and nothing of an upload left on disk after any stop.

The server tests start ``python app.py`` as a user, Docker or a Space does, with its own ``TMPDIR``
so that its folders can be watched, and stop it with SIGTERM (how containers and services are
stopped) or SIGINT (Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import free_port

from detector.ui import workdir

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _imported(stderr: str) -> set[str]:
    """Top-level package names from ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_help_answers_without_importing_gradio_or_tensorflow():
    # `python app.py --help` took 6.6 s: Gradio was imported before the arguments were read.
    proc = subprocess.run([sys.executable, "-X", "importtime", "app.py", "--help"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--share" in proc.stdout and "--port" in proc.stdout
    imported = _imported(proc.stderr)
    assert "argparse" in imported  # the measurement itself works
    assert not imported & {"gradio", "tensorflow", "keras", "fastapi", "cv2", "matplotlib"}, imported


def test_a_usage_error_also_answers_before_the_imports():
    proc = subprocess.run([sys.executable, "-X", "importtime", "app.py", "--port", "eighty"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "invalid int value" in proc.stderr
    assert "gradio" not in _imported(proc.stderr)


# --------------------------------------------------------------------- stale folders


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


HOLD = """
import sys, time
from detector.ui.workdir import WorkDir
w = WorkDir(sys.argv[1])
print(w.name, flush=True)
time.sleep(120)
"""


def test_folders_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / f"fdet-app-{_dead_pid()}-abc"  # killed outright: no lock held, pid gone
    (dead / "previews").mkdir(parents=True)
    (dead / "previews" / "upload.webm").write_bytes(b"someone's video")
    (dead / workdir.LOCK_NAME).write_text("")
    no_lock_dead = tmp_path / f"fdet-app-{_dead_pid()}-def"  # without a lock file the pid decides
    no_lock_dead.mkdir()
    unknown = tmp_path / "fdet-app-xyz"  # neither pid nor lock: cannot tell, left alone
    unknown.mkdir()
    mine = workdir.WorkDir(tmp_path)  # this process, alive and holding its lock
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        alive = Path(other.stdout.readline().strip())  # another live process's folder
        assert alive.is_dir() and alive.name.startswith(f"fdet-app-{other.pid}-")
        removed = workdir.remove_stale(tmp_path)
        assert sorted(removed) == sorted([dead, no_lock_dead])
        assert not dead.exists() and not no_lock_dead.exists()
        assert unknown.is_dir() and mine.path.is_dir() and alive.is_dir()
        other.kill()  # now it dies without cleaning up: its folder is stale
        other.wait()
        assert workdir.remove_stale(tmp_path) == [alive] and not alive.exists()
    finally:
        other.kill()
        mine.cleanup()
    assert not mine.path.exists()


def test_a_folder_name_carries_the_pid():
    w = workdir.WorkDir()
    try:
        assert w.path.name.startswith(f"fdet-app-{os.getpid()}-") and (w.path / workdir.LOCK_NAME).is_file()
        assert not workdir.is_stale(w.path)
    finally:
        w.cleanup()


# --------------------------------------------------------------------- a real server, stopped


def _wait_for(url: str, proc: subprocess.Popen, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the server ended early: {proc.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the server did not answer within {seconds} s")


@pytest.mark.slow  # starts `python app.py` (TensorFlow and the model load: tens of seconds)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_the_servers_temp_folder_and_uploads_are_gone_after_a_stop(tmp_path, astronaut, how):
    from PIL import Image

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale = tmp / f"fdet-app-{_dead_pid()}-old"  # left by an earlier server that was killed outright
    (stale / "previews").mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)  # Gradio's upload cache then lies in TMPDIR/gradio, watched here too
    # Started as a background job or from a script is: with SIGINT ignored, which Python keeps (and then
    # installs no Ctrl-C handler); the app must still stop and clean up on SIGINT.
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, proc, 600)
        assert not stale.exists()  # removed at start
        folders = list(tmp.glob("fdet-app-*"))
        assert [f.name.split("-")[2] for f in folders] == [str(proc.pid)]  # its own, named with its pid
        assert any(folders[0].rglob("*.jpg"))  # the examples, written at start
        previews = folders[0] / "previews"
        previews.mkdir()
        (previews / "clip.webm").write_bytes(b"a user's re-encoded video")  # as a video upload leaves it

        photo = tmp_path / "upload.jpg"
        Image.fromarray(astronaut).save(photo)
        from gradio_client import Client, handle_file

        res = Client(url, verbose=False).predict(handle_file(str(photo)), "off", api_name="/detect")
        assert res["error"] is None
        assert list(folders[0].rglob("upload.jpg"))  # Gradio's copy of the upload, kept in the app's folder

        proc.send_signal(how)
        _, stderr = proc.communicate(timeout=180)  # the demo-game maker is joined at exit (<= 60 s)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in stderr, stderr[-3000:]
    assert not list(tmp.glob("fdet-app-*")), "the app's temp folder survived the stop"
    left = [p for p in tmp.rglob("*") if p.is_file()]
    assert not left, f"files survived the stop: {left}"  # the upload, its cached copies, the previews: none
