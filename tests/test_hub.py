"""Model from the Hugging Face Hub: download, hash check, offline fallback, and the push script's dry run.

Nothing here touches the network: the downloads are either offline-mode lookups in the local
cache or a stand-in for ``hf_hub_download`` that serves files from a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from detector.config import DEFAULT_MODEL_DIR
from detector.errors import ModelError
from detector.inference import hub

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PUSH = PROJECT_ROOT / "scripts" / "push_to_hub.py"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_bundle(folder: Path, card: bool = True) -> Path:
    """A model folder whose card names the weights' hash (the bytes need not be a real model here)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.keras").write_bytes(b"not really a keras archive " * 100)
    (folder / "model.json").write_text(json.dumps({"name": "test", "version": "1", "sha256": _sha(folder / "model.keras")}))
    if card:
        (folder / "MODEL_CARD.md").write_text("# A model card\n")
    return folder


class FakeHub:
    """Serves files from a folder the way ``hf_hub_download`` serves the cache; records each call."""

    def __init__(self, snapshot: Path):
        self.snapshot = snapshot
        self.calls: list[dict] = []

    def __call__(self, repo_id: str, filename: str, **kw) -> str:
        self.calls.append({"repo_id": repo_id, "filename": filename, **kw})
        path = self.snapshot / filename
        if not path.is_file():
            raise LocalEntryNotFoundError(f"{filename} is not in {repo_id}")
        return str(path)


@pytest.fixture
def hub_env(monkeypatch):
    monkeypatch.delenv("FDET_MODEL_DIR", raising=False)
    monkeypatch.delenv(hub.REVISION_ENV, raising=False)
    monkeypatch.setenv(hub.REPO_ENV, f"fdet-tests/missing-{uuid.uuid4().hex[:8]}")
    return monkeypatch


@pytest.fixture
def fake_hub(tmp_path, hub_env):
    fake = FakeHub(make_bundle(tmp_path / "snapshots" / COMMIT))
    hub_env.setattr(huggingface_hub, "hf_hub_download", fake)
    return fake


def hub_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "detector.inference.hub" and r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------- resolve_model_dir


def test_without_a_hub_repo_the_bundled_model_is_used(monkeypatch):
    monkeypatch.delenv(hub.REPO_ENV, raising=False)

    def no_network(*a, **k):
        raise AssertionError("nothing should be downloaded without FDET_HF_REPO")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    assert hub.resolve_model_dir() == DEFAULT_MODEL_DIR


def test_offline_mode_falls_back_to_the_bundled_model_with_one_log_line(hub_env, caplog):
    hub_env.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        folder = hub.resolve_model_dir()
    assert folder == DEFAULT_MODEL_DIR
    lines = hub_warnings(caplog)
    assert len(lines) == 1
    text = lines[0].getMessage()
    assert os.environ[hub.REPO_ENV] in text and "offline" in text and "bundled" in text


def test_a_network_error_falls_back_with_one_log_line(hub_env, caplog):
    def unreachable(*a, **k):
        raise ConnectionError("Connection refused")

    hub_env.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with caplog.at_level(logging.WARNING):
        assert hub.resolve_model_dir() == DEFAULT_MODEL_DIR
    assert len(hub_warnings(caplog)) == 1


def test_downloaded_model_folder_is_verified_and_returned(fake_hub, hub_env, caplog):
    hub_env.setenv(hub.REVISION_ENV, "v2")
    with caplog.at_level(logging.WARNING):
        folder = hub.resolve_model_dir()
    assert folder == fake_hub.snapshot
    assert hub_warnings(caplog) == []
    asked = [c["filename"] for c in fake_hub.calls]
    assert asked[:2] == ["model.json", "model.keras"] and "MODEL_CARD.md" in asked
    assert all(c["repo_id"] == os.environ[hub.REPO_ENV] for c in fake_hub.calls)
    # the first file is fetched at the requested revision, the rest pinned to the commit it came from
    assert fake_hub.calls[0]["revision"] == "v2"
    assert all(c["revision"] == COMMIT for c in fake_hub.calls[1:])


def test_revision_defaults_to_main(fake_hub):
    hub.resolve_model_dir()
    assert fake_hub.calls[0]["revision"] == "main"


def test_a_tampered_download_is_refused(fake_hub):
    with open(fake_hub.snapshot / "model.keras", "ab") as f:
        f.write(b"!")
    with pytest.raises(ModelError, match="does not match"):
        hub.resolve_model_dir()


def test_a_card_without_hash_is_refused(fake_hub):
    (fake_hub.snapshot / "model.json").write_text(json.dumps({"name": "test"}))
    with pytest.raises(ModelError, match="sha256"):
        hub.resolve_model_dir()


# ---------------------------------------------------------------------------- Detector precedence


def test_detector_loads_the_hub_model_when_no_folder_is_given(tmp_path, hub_env):
    from detector.inference.pipeline import Detector

    snapshot = tmp_path / "snapshots" / COMMIT
    shutil.copytree(DEFAULT_MODEL_DIR, snapshot)
    hub_env.setattr(huggingface_hub, "hf_hub_download", FakeHub(snapshot))
    det = Detector(warmup=False)
    assert det.model_dir == snapshot


def test_fdet_model_dir_wins_over_the_hub(tmp_path, hub_env):
    import detector.inference.pipeline as pipeline

    def no_network(*a, **k):
        raise AssertionError("FDET_MODEL_DIR is set: the Hub must not be asked")

    class Loaded(Exception):
        pass

    def fake_load(model_dir):
        raise Loaded(str(model_dir))

    hub_env.setenv("FDET_MODEL_DIR", str(tmp_path))
    hub_env.setattr(huggingface_hub, "hf_hub_download", no_network)
    hub_env.setattr(pipeline, "read_config", fake_load)  # the first thing a Detector reads
    with pytest.raises(Loaded) as err:
        pipeline.Detector(warmup=False)
    assert Path(str(err.value)) == tmp_path


# ---------------------------------------------------------------------------- push_to_hub.py


def run_push(*args: str) -> subprocess.CompletedProcess:
    # An unreachable endpoint and offline mode: a dry run that tried the network would fail loudly.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, str(PUSH), *args], capture_output=True, text=True, env=env, timeout=60)


def test_push_dry_run_lists_names_sizes_and_hashes(tmp_path):
    bundle = make_bundle(tmp_path / "model")
    out = run_push("--repo-id", "someone/fdet", "--model-dir", str(bundle), "--private", "--revision", "v1", "--dry-run")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "someone/fdet" in text and "private" in text and "v1" in text and "nothing was uploaded" in text
    for name in ("model.keras", "model.json", "MODEL_CARD.md"):
        path = bundle / name
        assert name in text and _sha(path) in text and f"{path.stat().st_size:,}" in text
    assert "-> README.md" in text  # the card becomes the repository's page


def test_push_dry_run_without_card_says_so(tmp_path):
    out = run_push("--repo-id", "someone/fdet", "--model-dir", str(make_bundle(tmp_path / "m", card=False)), "--dry-run")
    assert out.returncode == 0 and "no MODEL_CARD.md" in out.stdout and "README.md " not in out.stdout


def test_push_refuses_weights_that_do_not_match_the_card(tmp_path):
    bundle = make_bundle(tmp_path / "model")
    with open(bundle / "model.keras", "ab") as f:
        f.write(b"!")
    out = run_push("--repo-id", "someone/fdet", "--model-dir", str(bundle), "--dry-run")
    assert out.returncode == 2
    assert "does not match" in out.stderr and "Would upload" not in out.stdout


def test_push_refuses_a_folder_without_weights(tmp_path):
    bundle = make_bundle(tmp_path / "model")
    (bundle / "model.keras").unlink()
    out = run_push("--repo-id", "someone/fdet", "--model-dir", str(bundle), "--dry-run")
    assert out.returncode == 2 and "model.keras" in out.stderr and "Traceback" not in out.stderr


def test_push_takes_a_matching_lite_copy_and_refuses_a_stale_one(tmp_path):
    bundle = make_bundle(tmp_path / "model")
    (bundle / "model.tflite").write_bytes(b"a converted copy " * 50)
    card = json.loads((bundle / "model.json").read_text())
    card.update(lite_sha256=_sha(bundle / "model.tflite"), lite_source_sha256=card["sha256"])
    (bundle / "model.json").write_text(json.dumps(card))
    out = run_push("--repo-id", "someone/fdet", "--model-dir", str(bundle), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "model.tflite" in out.stdout and _sha(bundle / "model.tflite") in out.stdout
    (bundle / "model.tflite").write_bytes(b"another copy")
    out = run_push("--repo-id", "someone/fdet", "--model-dir", str(bundle), "--dry-run")
    assert out.returncode == 2 and "export-lite" in out.stdout + out.stderr
