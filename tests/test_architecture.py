"""The tree shows the architecture, and the imports keep it that way.

Every module of ``detector/`` and ``explain/`` is parsed with ``ast``; every import counts --
module level, inside functions, under ``if TYPE_CHECKING:`` -- and relative imports are resolved.
Three rules:

(a) inference (``detector.inference``) imports nothing of training, evaluation, batch or UI;
(b) ``explain`` imports nothing of ``detector`` beyond the forward-pass interface
    (``detector.inference.forward``) -- today it imports nothing of it at all;
(c) no import cycle among these modules.

The checker itself is tested on small planted graphs and source trees, so it can fail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("detector", "explain")
STAGES = ("training", "evaluation", "batch", "ui")
EXPLAIN_MAY_IMPORT = {"detector.inference.forward"}


# ------------------------------------------------------------------ the checker


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules ``path`` (module ``name``) imports anywhere in its body, resolved to full names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # "from pkg import module"
    # a.b.c imports a.b.c (not its parents: those are packages whose __init__ is checked on its own)
    return {m for m in found if m in known and m != name}


def import_graph(root: Path = PROJECT_ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Rules (a) and (b) as readable lines, e.g. ``detector.inference.x imports detector.training.y``."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if _within(module, "detector.inference") and any(_within(target, f"detector.{s}") for s in STAGES):
                bad.append(f"{module} imports {target} (inference must not depend on {target.split('.')[1]})")
            if _within(module, "explain") and _within(target, "detector") and target not in EXPLAIN_MAY_IMPORT:
                bad.append(f"{module} imports {target} (explain may import only {sorted(EXPLAIN_MAY_IMPORT)})")
    return bad


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# ------------------------------------------------------------------ the project obeys it


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_tree_has_one_folder_per_stage(graph):
    for stage in ("inference", *STAGES):
        assert f"detector.{stage}" in graph, stage
    assert {"detector.inference.pipeline", "detector.inference.forward", "detector.inference.bundle",
            "detector.training.train", "detector.training.export", "detector.evaluation.evaluate",
            "detector.batch.scan", "detector.batch.records", "detector.ui.game", "explain.gradcam"} <= set(graph)
    flat = sorted(p.name for p in (PROJECT_ROOT / "detector").glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "config.py", "errors.py"]  # everything else is in a stage


def test_inference_imports_no_training_evaluation_batch_or_ui_and_explain_no_detector(graph):
    assert layer_violations(graph) == []


def test_no_import_cycle(graph):
    assert find_cycle(graph) is None


def test_the_graph_sees_function_level_and_relative_imports(graph):
    # Known edges of each kind, so an empty graph cannot pass the rules above.
    assert "detector.inference.hub" in graph["detector.inference.pipeline"]  # inside Detector.__init__
    assert "detector.inference.lite" in graph["detector.inference.bundle"]  # inside load_lite
    assert "detector.evaluation.metrics" in graph["detector.training.train"]  # "from ..evaluation import metrics"
    assert "detector.inference.pipeline" in graph["detector"]  # under TYPE_CHECKING in the public API


def test_import_detector_and_help_load_no_tensorflow():
    code = ("import sys, detector, detector.config, detector.training.prepare, detector.training.train, "
            "detector.evaluation.card, detector.batch.scan, detector.ui.game, explain.gradcam, explain.overlay; "
            "from detector import DetectionResult, load_image, ImageError; "
            "heavy = [m for m in ('tensorflow', 'keras', 'gradio') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    run = subprocess.run([sys.executable, "-m", "detector.training.prepare", "--help"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "--face-finder" in run.stdout, run.stderr[-2000:]


def test_the_public_api_resolves_every_name():
    import detector

    for name in detector.__all__:
        assert getattr(detector, name) is not None, name
    assert detector.Detector.__module__ == "detector.inference.pipeline"
    assert issubclass(detector.ImageError, detector.DetectorError)
    with pytest.raises(AttributeError):
        detector.no_such_name  # noqa: B018


def test_python_m_detector_lists_every_command():
    from detector.__main__ import COMMANDS, available

    assert list(COMMANDS) == ["scan", "prepare", "reconstruct", "train-ae", "train", "export-lite", "evaluate", "loso",
                              "card"]
    assert available() == COMMANDS  # every module is there and has a main(argv)
    import importlib

    for module, _ in COMMANDS.values():
        assert callable(importlib.import_module(module).main), module


# ------------------------------------------------------------------ the checker fails on planted violations


def test_checker_finds_a_planted_cycle_and_layer_violations():
    clean = {"detector.inference.a": {"detector.inference.b"}, "detector.inference.b": set(),
             "detector.training.t": {"detector.inference.a"}, "explain.e": {"detector.inference.forward"}}
    assert find_cycle(clean) is None and layer_violations(clean) == []
    cyclic = {**clean, "detector.inference.b": {"detector.training.t"}}
    assert find_cycle(cyclic) == ["detector.inference.a", "detector.inference.b", "detector.training.t",
                                  "detector.inference.a"]
    assert layer_violations(cyclic) == ["detector.inference.b imports detector.training.t "
                                        "(inference must not depend on training)"]
    reaching = {**clean, "explain.e": {"detector.inference.forward", "detector.config"},
                "detector.inference.b": {"detector.ui.game"}}
    assert len(layer_violations(reaching)) == 2
    assert find_cycle({"x": {"x"}}) == ["x", "x"]


def test_checker_reads_function_level_relative_imports_from_source(tmp_path):
    def write(rel: str, text: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for pkg in ("detector", "detector/inference", "detector/training", "explain"):
        write(f"{pkg}/__init__.py", "")
    write("detector/training/sbi.py", "import numpy\n")
    write("detector/inference/faces.py", "def crop():\n    from ..training import sbi\n    return sbi\n")
    write("detector/inference/images.py", "from . import faces\n")
    write("explain/gradcam.py", "def f():\n    import detector.inference.images\n")
    g = import_graph(tmp_path)
    assert g["detector.inference.faces"] == {"detector.training", "detector.training.sbi"}
    assert g["detector.inference.images"] == {"detector.inference", "detector.inference.faces"}
    assert layer_violations(g) == [
        "detector.inference.faces imports detector.training (inference must not depend on training)",
        "detector.inference.faces imports detector.training.sbi (inference must not depend on training)",
        "explain.gradcam imports detector.inference.images (explain may import only "
        "['detector.inference.forward'])"]
    write("detector/training/sbi.py", "from ..inference.images import x\n")  # closes a loop
    assert find_cycle(import_graph(tmp_path)) is not None


def test_bench_imports_nothing_from_tests_and_touches_no_sys_path():
    for path in sorted((PROJECT_ROOT / "bench").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add(node.module or "")
        assert not {n for n in names if n.split(".")[0] in ("tests", "conftest", "servers", "hostile")}, path.name
        assert "sys.path" not in ast.unparse(tree), path.name


def readme_layout() -> dict[str, set[str]]:
    """Folder -> the ``.py`` names the layout block of docs/code-layout.md lists under it (two spaces per level).

    The README links to that page; the block is the first fenced block there."""
    text = (PROJECT_ROOT / "docs" / "code-layout.md").read_text(encoding="utf-8")
    block = text.split("```\n", 2)[1]
    listed: dict[str, set[str]] = {}
    stack: list[str] = []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        first = line.split()[0]
        if first.endswith("/"):
            stack = stack[:depth] + [first.rstrip("/")]
            listed.setdefault("/".join(stack), set())
            continue
        folder = "/".join(stack[:depth])
        listed.setdefault(folder, set()).update(w for w in line.split() if w.endswith(".py"))
    return listed


def test_readme_layout_lists_every_module_and_only_those():
    listed = readme_layout()
    for folder in ("detector", "detector/inference", "detector/training", "detector/evaluation", "detector/batch",
                   "detector/ui", "explain", "bench"):
        on_disk = {p.name for p in (PROJECT_ROOT / folder).glob("*.py")} - {"__init__.py"}
        assert listed.get(folder, set()) - {"__init__.py"} == on_disk, folder
    assert {"app.py", "streamlit_app.py"} <= listed[""]
    assert {p.name for p in PROJECT_ROOT.glob("*.py")} == listed[""]
