"""The README is the front page: short, current, and every figure in it read from the shipped model's JSON.

A new model (version, threshold, evaluation) makes these tests fail until the README says the new
figures; the messages say which sentence to change.  The docs/ pages it links to are checked for
working links, existing commands and no development diary.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MODEL_DIR = ROOT / "assets" / "model"
MAX_LINES = 250

DECIMAL = re.compile(r"(?<![\w.])0\.\d+(?![\d.]|\s?%)")  # a share such as 0.8 % is a percentage
PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?%")


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def body(path: Path) -> str:
    """The page without its front matter (the Space's YAML is checked in test_app and test_hub)."""
    t = text(path)
    if t.startswith("---\n"):
        t = t[4:].split("\n---\n", 1)[1]
    return t


def model_json() -> dict:
    return json.loads(text(MODEL_DIR / "model.json"))


def loso_folds() -> dict:
    return json.loads(text(MODEL_DIR / "eval" / "loso.json"))["folds"]


def threshold_words(threshold: float) -> set[str]:
    return {f"{threshold:.3f}", f"{threshold:.2f}"}


def unsure_band(threshold: float, band: float) -> tuple[float, float]:
    z = math.log(threshold / (1 - threshold))
    return 1 / (1 + math.exp(-(z - band))), 1 / (1 + math.exp(-(z + band)))


def unsure_logit() -> float:
    source = text(ROOT / "detector" / "inference" / "results.py")
    return float(re.search(r"^UNSURE_LOGIT = ([\d.]+)", source, re.M).group(1))


def allowed_figures() -> tuple[set[str], set[str]]:
    """The decimals and percentages the README may print: each one read from model.json or eval/loso.json."""
    meta = model_json()
    th = float(meta["threshold"])
    decimals = threshold_words(th) | {str(unsure_logit())}
    lo, hi = unsure_band(th, unsure_logit())
    decimals |= {f"{lo:.2f}", f"{hi:.2f}"}
    percents = {f"{100 * meta['metrics']['threshold_choice']['max_real_flagged']:.0f}"}
    for row in meta["metrics"]["val"].values():
        decimals |= {f"{row['auc']:.3f}", f"{row['auc']:.2f}"}
        for key in ("tpr_fake", "false_positive_rate", "recall_at_5pct_reals"):
            if row.get(key) is not None:
                percents |= {f"{100 * row[key]:.0f}", f"{100 * row[key]:.1f}"}
    for fold in loso_folds().values():
        decimals |= {f"{fold['held_out_auc']:.2f}", f"{fold['held_out_auc']:.3f}"}
        for key in ("held_out_fakes_caught", "held_out_real_flagged", "recall_at_5pct_reals"):
            if fold.get(key) is not None:
                percents |= {f"{100 * fold[key]:.0f}", f"{100 * fold[key]:.1f}"}
    return decimals, percents


def test_readme_fits_a_screen_or_a_few():
    lines = text(README).count("\n") + 1
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail into docs/ (at most {MAX_LINES})"


def test_readme_names_the_shipped_model_version_only():
    version = model_json()["version"]
    named = re.findall(r"\b(?:model|version)\s+\**(\d+\.\d+\.\d+)", body(README))
    assert named, "the README names the shipped model's version"
    assert set(named) == {version}, f"README names model {sorted(set(named))}; model.json says {version}"


def threshold_clauses(page: str) -> list[str]:
    """The text after each word 'threshold' up to the end of its clause (; . | or the line's end)."""
    clauses = []
    for line in page.splitlines():
        for m in re.finditer(r"threshold", line):
            clauses.append(re.split(r";|\.\s|\.$|\|", line[m.end():], maxsplit=1)[0])
    return clauses


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_threshold_figure_is_the_shipped_threshold(page):
    shipped = threshold_words(float(model_json()["threshold"]))
    for clause in threshold_clauses(body(page)):
        for number in DECIMAL.findall(clause):
            assert number in shipped, f"{page.name}: 'threshold{clause}' -- the shipped threshold is {sorted(shipped)}"


def test_every_figure_in_the_readme_is_read_from_the_model_json():
    decimals, percents = allowed_figures()
    page = body(README)
    stale_decimals = sorted(set(DECIMAL.findall(page)) - decimals)
    stale_percents = sorted(set(PERCENT.findall(page)) - percents)
    assert not stale_decimals and not stale_percents, (
        f"README figures not found in assets/model/model.json or eval/loso.json: {stale_decimals} {stale_percents}")


def test_readme_states_the_threshold_and_band_of_the_shipped_model():
    page = body(README)
    th = float(model_json()["threshold"])
    lo, hi = unsure_band(th, unsure_logit())
    assert f"**{th:.3f}**" in page
    assert f"{lo:.2f} to {hi:.2f}" in page


def test_readme_limits_quote_the_leave_one_family_out_figures():
    page = body(README).split("## Limits", 1)[1].split("\n## ", 1)[0]
    folds = loso_folds()
    aucs = [f["held_out_auc"] for f in folds.values()]
    assert f"AUC {min(aucs):.2f} to {max(aucs):.2f}" in page
    words = {"swap": "face swaps", "gan": "GAN", "diffusion": "diffusion portraits", "composite": "Photoshop composites",
             "generators": "GAN or diffusion faces"}
    for name, fold in folds.items():
        assert f"{100 * fold['held_out_fakes_caught']:.0f} % of unseen {words[name]}" in page, name


def test_readme_uses_the_verdict_words_the_app_shows():
    from detector.inference.results import VERDICT_WORDS

    page = body(README)
    for verdict, words in VERDICT_WORDS.items():
        assert f"| `{verdict}` | {words} |" in page, f"README's verdict table: {verdict} is shown as {words!r}"


DIARY = [r"\bsessions?\b", r"\bissue\b", r"\bissue #", r"\bcommit\b", r"\bwould try\b", r"\bTODO\b",
         r"\bwhat I\b", r"\bnext time\b"]
HASH = re.compile(r"(?<![\w./-])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![\w-])")


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_no_development_diary(page):
    t = body(page)
    for pattern in DIARY:
        found = re.search(pattern, t, re.I)
        assert not found, f"{page.name}: {t[max(0, found.start() - 60):found.end() + 60]!r}"
    assert not HASH.findall(t), f"{page.name}: commit hashes {HASH.findall(t)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+\s+(.*)$", body(path), re.M)}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_link_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", body(page)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to {target} -- no such file"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{page.name}: link to {target} -- no heading with that anchor"


def test_the_readme_links_every_docs_page():
    page = body(README)
    for doc in DOCS:
        assert f"(docs/{doc.name})" in page, f"README does not link docs/{doc.name}"


def code_of(page: str) -> str:
    """Fenced blocks and inline code spans: where commands are named."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", page, re.S)
    rest = re.sub(r"```.*?```", "", page, flags=re.S)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", rest))


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", text(ROOT / "Makefile"), re.M))


def detector_commands() -> set[str]:
    tree = ast.parse(text(ROOT / "detector" / "__main__.py"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "COMMANDS":
            return set(ast.literal_eval(node.value))
    raise AssertionError("COMMANDS not found in detector/__main__.py")


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_command_named_exists(page):
    code = code_of(body(page))
    targets, commands = make_targets(), detector_commands()
    for target in re.findall(r"\bmake ([a-z][\w-]*)", code):
        assert target in targets, f"{page.name}: `make {target}` is not a Makefile target"
    for command in re.findall(r"python -m detector ([a-z][\w-]*)", code):
        assert command in commands, f"{page.name}: `python -m detector {command}` is not a command"
    for module in re.findall(r"python -m bench\.(\w+)", code):
        assert (ROOT / "bench" / f"{module}.py").is_file(), f"{page.name}: bench.{module} does not exist"
    for script in re.findall(r"(?:python|\.venv/bin/python) ((?:scripts/)?\w+\.py)", code):
        assert (ROOT / script).is_file(), f"{page.name}: {script} does not exist"


def test_usage_lists_the_exit_statuses_the_scan_documents():
    epilog = text(ROOT / "detector" / "batch" / "scan.py").split("exit status:", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^  (\d+)\s{2,}", epilog, re.M))
    listed = set(re.findall(r"^  \| `(\d+)` \|", body(ROOT / "docs" / "usage.md"), re.M))
    assert documented and listed == documented


def bench_model_version(data: dict) -> str | None:
    for path in (("model", "version"), ("meta", "model", "version"), ("ours", "model", "version")):
        node = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    return None


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_measured_figures_name_the_model_they_were_measured_on(page):
    """A page quoting a kept benchmark run says which model version that run measured."""
    t = body(page)
    for name in sorted(set(re.findall(r"bench/results/([\w.-]+\.json)", t))):
        path = ROOT / "bench" / "results" / name
        assert path.is_file(), f"{page.name}: bench/results/{name} does not exist"
        version = bench_model_version(json.loads(text(path)))
        if version:
            assert f"model {version}" in t or f"model **{version}" in t.replace("**model", "model **"), (
                f"{page.name} quotes bench/results/{name} without saying it measured model {version}")


def test_speed_and_scale_pages_quote_their_runs():
    speed = json.loads(text(ROOT / "bench" / "results" / "speed-2.0.0.json"))["ours"]
    page = body(ROOT / "docs" / "speed.md")
    assert f"**{speed['e2e']['astronaut_512']['stages_ms']['total']['p50']} ms**" in page
    assert f"**{speed['cold_start']['cold_start_s']:.1f} s**" in page
    scale = json.loads(text(ROOT / "bench" / "results" / "scale-2.0.0.json"))
    page = body(ROOT / "docs" / "scale-out.md")
    for engine in ("local", "ray_1", "ray_2"):
        assert f"| {scale[engine]['crops_per_s']} | {scale[engine]['cores_used']} |" in page, engine
    fidelity = json.loads(text(ROOT / "bench" / "results" / "fidelity.json"))
    page = body(ROOT / "docs" / "heatmaps.md")
    assert f"| gradcam++ | **{fidelity['methods']['gradcam++']['overall']['pointing']:.3f}** |" in page


def test_readme_names_every_source_the_shipped_model_was_trained_on():
    page = body(README).split("## Train and evaluate", 1)[1].split("\n## ", 1)[0]
    sources = set(model_json()["metrics"]["val"]) - {"overall"}
    assert sources and not {s for s in sources if s not in page}, "README's training data misses a source"
    table = body(ROOT / "docs" / "model-and-training.md")
    assert not {s for s in sources if f"| {s} |" not in table}, "docs/model-and-training.md's source table misses one"


def test_the_licence_is_stated_for_code_and_for_weights():
    page = body(README)
    section = page.split("## Licence", 1)[1].split("\n## ", 1)[0]
    assert "**Code**: MIT" in section and "non-commercial" in section and "research" in section
    card = text(MODEL_DIR / "MODEL_CARD.md")
    assert "non-commercial" in card  # the card's own licence section says the same


@pytest.mark.parametrize(("module", "argv"), [
    ("detector.training.train", ["--out", "{tmp}/model"]),
    ("detector.evaluation.evaluate", ["--out", "{tmp}/eval"]),
])
def test_train_and_evaluate_without_data_end_in_one_sentence(tmp_path, module, argv):
    """`make train` / `make evaluate` on a checkout without the data set: one sentence, no traceback."""
    import importlib

    entry = importlib.import_module(module)
    missing = tmp_path / "no-such-data"
    with pytest.raises(SystemExit) as exit_info:
        (getattr(entry, "parse_args", None) or entry.main)(
            ["--data", str(missing), *[a.format(tmp=tmp_path) for a in argv]])
    message = str(exit_info.value.code)
    assert f"no data at {missing}" in message and "real/ and fake/" in message and "\n" not in message
    assert not (tmp_path / "model").exists() and not (tmp_path / "eval").exists()


def test_make_passes_the_data_folder_to_train_and_evaluate():
    makefile = text(ROOT / "Makefile")
    assert re.search(r"^DATA\s+\?= \.\./shared/data/faces$", makefile, re.M)
    assert "-m detector train --data $(DATA)" in makefile and "-m detector evaluate --data $(DATA)" in makefile
