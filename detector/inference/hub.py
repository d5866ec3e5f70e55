"""Where the model comes from: the Hugging Face Hub when asked, the bundled copy otherwise.

    FDET_HF_REPO=you/fdet-mobilenetv2 FDET_HF_REVISION=v1.0 python app.py

With ``FDET_HF_REPO`` set, :func:`resolve_model_dir` fetches ``model.json`` and ``model.keras``
(plus the model card, when the repository has one) into the ordinary Hugging Face cache and
returns that folder, so a new model can be published without rebuilding the app.  The weights
are checked against the SHA-256 in ``model.json`` before anyone loads them: a file that does
not match raises :class:`~detector.errors.ModelError` rather than silently serving something
else.

A detector must still start on a machine without network, so every network or Hub failure
(no connection, ``HF_HUB_OFFLINE=1`` with nothing cached, a missing repository or revision)
falls back to the bundled ``assets/model`` with one warning in the log that says why.  In
offline mode a copy already in the cache is used: that is what the cache is for.

Precedence, highest first: an explicit ``model_dir`` argument, ``FDET_MODEL_DIR``,
``FDET_HF_REPO``, the bundled model (the first two are handled by
:class:`detector.inference.pipeline.Detector`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..config import (
    DEFAULT_HF_REVISION,
    DEFAULT_MODEL_DIR,
    HF_OFFLINE_ENV,
    HF_REPO_ENV,
    HF_REVISION_ENV,
    env_str,
    env_truthy,
)
from ..errors import ModelError
from .bundle import CONFIG_FILE, LITE_FILE, MODEL_FILE, read_config, verify_weights

log = logging.getLogger(__name__)

REPO_ENV, REVISION_ENV, DEFAULT_REVISION = HF_REPO_ENV, HF_REVISION_ENV, DEFAULT_HF_REVISION  # from config
REQUIRED_FILES = (CONFIG_FILE, MODEL_FILE)  # the card first: it is small and names the hash
# The TF Lite copy only makes inference faster (checked against its card's hashes when loaded).
# The card travels as README.md on the Hub (that is the page people see); MODEL_CARD.md if
# someone uploaded it under its project name.
OPTIONAL_FILES = (LITE_FILE, "MODEL_CARD.md", "README.md")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as the environment says now."""
    try:
        from huggingface_hub import constants

        if constants.is_offline_mode():
            return True
    except ImportError:  # pragma: no cover - huggingface_hub is a pinned dependency
        pass
    return env_truthy(HF_OFFLINE_ENV)


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a download can raise when the Hub cannot be reached or the file is not there.

    huggingface_hub's own errors are OSError subclasses (HTTP, offline mode, not cached);
    ValueError covers a malformed repository id; the HTTP client's errors are added when
    importable, as its transport errors are not OSErrors.
    """
    errors: list[type[BaseException]] = [OSError, ValueError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    try:
        from huggingface_hub.errors import EntryNotFoundError

        errors.append(EntryNotFoundError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def verify_bundle(folder: str | Path) -> Path:
    """Raise :class:`ModelError` unless ``model.keras`` matches the SHA-256 in ``model.json``."""
    verify_weights(folder, read_config(folder), what="model downloaded to")
    return Path(folder)


def download_model(repo_id: str, revision: str = DEFAULT_REVISION, offline: bool = False) -> Path:
    """Fetch the model files of ``repo_id`` at ``revision`` into the HF cache; the folder holding them.

    Raises the download's own error (network, not found, offline and not cached) so the caller
    can decide; does not check the hash (see :func:`verify_bundle`).
    """
    from huggingface_hub import hf_hub_download

    folder: Path | None = None
    for name in REQUIRED_FILES:
        path = Path(hf_hub_download(repo_id=repo_id, filename=name, revision=revision, local_files_only=offline))
        if folder is None:
            folder = path.parent
            # A branch can move between two downloads; pin the rest to the commit we got first.
            if _COMMIT.match(folder.name):
                revision = folder.name
        elif path.parent != folder:
            raise ModelError(f"The files of {repo_id}@{revision} did not arrive in one folder "
                             f"({folder} and {path.parent}).")
    assert folder is not None
    for name in OPTIONAL_FILES:
        try:
            hf_hub_download(repo_id=repo_id, filename=name, revision=revision, local_files_only=offline)
        except _network_errors() as exc:  # nice to have, never a reason to fail
            log.debug("optional file %s not fetched from %s: %s", name, repo_id, exc)
    return folder


def resolve_model_dir(fallback: str | Path = DEFAULT_MODEL_DIR) -> Path:
    """The model folder to load: from the Hub if ``FDET_HF_REPO`` is set and reachable, else ``fallback``.

    Raises :class:`ModelError` if the downloaded weights do not match their card.
    """
    repo_id = env_str(REPO_ENV)
    if not repo_id:
        return Path(fallback)
    revision = env_str(REVISION_ENV) or DEFAULT_REVISION
    offline = is_offline()
    try:
        folder = download_model(repo_id, revision, offline=offline)
    except _network_errors() as exc:
        why = ("offline mode (HF_HUB_OFFLINE=1) and no copy in the local cache" if offline
               else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no details'}")
        log.warning("Could not get the model %s@%s from the Hugging Face Hub (%s); using the bundled model in %s.",
                    repo_id, revision, why, fallback)
        return Path(fallback)
    return verify_bundle(folder)
