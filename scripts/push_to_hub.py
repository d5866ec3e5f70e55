"""Publish a model folder to the Hugging Face Hub, where ``FDET_HF_REPO`` can fetch it from.

    python scripts/push_to_hub.py --repo-id you/fdet-mobilenetv2 --dry-run     # see what would go
    huggingface-cli login                                                        # or set HF_TOKEN
    python scripts/push_to_hub.py --repo-id you/fdet-mobilenetv2 --revision main

Uploads ``model.keras``, ``model.json``, ``model.tflite`` (the fast CPU copy, when the folder has
one) and ``MODEL_CARD.md`` (as the repository's ``README.md``, the page the Hub shows) in one
commit.  Before anything leaves the machine the weights (and the TF Lite copy) are checked against
the SHA-256 in ``model.json``: a folder whose files do not match
would be refused by every app that downloads it (``detector.inference.hub.verify_bundle``), so it is
refused here first.  ``--dry-run`` prints exactly what would be uploaded -- names, sizes and
SHA-256 -- and touches no network.

This script imports neither TensorFlow nor the detector package, so it starts instantly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "assets" / "model"
# (file in the model folder, name in the Hub repository, required)
FILES = (("model.keras", "model.keras", True), ("model.json", "model.json", True), ("model.tflite", "model.tflite", False),
         ("MODEL_CARD.md", "README.md", False))

EXIT_OK, EXIT_UPLOAD_FAILED, EXIT_BAD_BUNDLE = 0, 1, 2


class BundleError(Exception):
    """The model folder is not fit to publish; the message says why in one sentence."""


@dataclass
class Upload:
    source: Path
    path_in_repo: str
    size: int
    sha256: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def plan_upload(model_dir: str | Path) -> list[Upload]:
    """The files to upload, checked: both model files present and the weights matching the card."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise BundleError(f"{model_dir} is not a folder.")
    plan = []
    for name, dest, required in FILES:
        path = model_dir / name
        if not path.is_file():
            if required:
                raise BundleError(f"{path} is missing; a model folder needs model.keras and model.json.")
            continue
        plan.append(Upload(path, dest, path.stat().st_size, sha256_file(path)))
    try:
        card = json.loads((model_dir / "model.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{model_dir / 'model.json'} is not valid JSON ({exc}).") from exc
    expected = card.get("sha256") if isinstance(card, dict) else None
    weights = next(u for u in plan if u.path_in_repo == "model.keras")
    if not expected:
        raise BundleError(f"{model_dir / 'model.json'} has no sha256; apps would refuse to load this model.")
    if weights.sha256 != expected:
        raise BundleError(f"{weights.source} does not match model.json (SHA-256 {weights.sha256[:12]}... "
                          f"expected {expected[:12]}...); re-save the model before publishing it.")
    lite = next((u for u in plan if u.path_in_repo == "model.tflite"), None)
    if lite is not None and (lite.sha256 != card.get("lite_sha256") or card.get("lite_source_sha256") != expected):
        raise BundleError(f"{lite.source} does not match model.json (or was converted from other weights); "
                          f"re-export it with `python -m detector export-lite {model_dir}` before publishing.")
    return plan


def describe(plan: list[Upload], repo_id: str, revision: str, private: bool) -> str:
    lines = [f"Would upload to the {'private' if private else 'public'} model repository {repo_id} "
             f"at revision {revision} (one commit):"]
    width = max(len(u.source.name) for u in plan)
    for u in plan:
        lines.append(f"  {u.source.name:<{width}} -> {u.path_in_repo:<11} {u.size:>12,} bytes  sha256 {u.sha256}")
    if not any(u.path_in_repo == "README.md" for u in plan):
        lines.append("  (no MODEL_CARD.md in the folder: the repository gets no README)")
    return "\n".join(lines)


def push(plan: list[Upload], repo_id: str, revision: str, private: bool, token: str | None = None) -> str:
    """Create the repository (if needed) and the branch, then upload everything in one commit; the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    card = json.loads(next(u.source for u in plan if u.path_in_repo == "model.json").read_text())
    weights = next(u for u in plan if u.path_in_repo == "model.keras")
    info = api.create_commit(
        repo_id, repo_type="model", revision=revision,
        operations=[CommitOperationAdd(path_in_repo=u.path_in_repo, path_or_fileobj=str(u.source)) for u in plan],
        commit_message=f"Upload {card.get('name', 'model')} {card.get('version', '')} (sha256 {weights.sha256[:12]})".strip(),
    )
    return str(getattr(info, "commit_url", info))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python scripts/push_to_hub.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo-id", required=True, help="Hub repository to publish to, as owner/name (created if missing)")
    p.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR),
                   help="folder with model.keras, model.json and optionally MODEL_CARD.md (default: assets/model)")
    p.add_argument("--private", action="store_true", help="create the repository as private (no effect if it exists)")
    p.add_argument("--revision", default="main",
                   help="branch to commit to, created from main if missing; apps select it with FDET_HF_REVISION")
    p.add_argument("--token", default=None,
                   help="Hub token with write access (default: HF_TOKEN or the token saved by `huggingface-cli login`)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the files, sizes and SHA-256 that would be uploaded; no network, nothing uploaded")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = plan_upload(args.model_dir)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_BUNDLE
    print(describe(plan, args.repo_id, args.revision, args.private))
    if args.dry_run:
        print("Dry run: nothing was uploaded.")
        return EXIT_OK
    try:
        url = push(plan, args.repo_id, args.revision, args.private, args.token)
    except Exception as exc:  # noqa: BLE001 - network, auth and Hub errors all end in one sentence
        print(f"error: the upload to {args.repo_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UPLOAD_FAILED
    print(f"Uploaded: {url}")
    print(f"Apps fetch it with: FDET_HF_REPO={args.repo_id} FDET_HF_REVISION={args.revision}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
