"""The package's shape, checked: data flows one way (data -> features -> models -> training ->
scoring/export -> CLIs; `tuning/` and `bench/` on top) and no module imports in a cycle.

Imports are read from the source (every `import` statement, including those inside
functions, which would otherwise hide a cycle), so the check costs no TensorFlow start-up.
ARCHITECTURE.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Layer of each module (longest matching prefix wins). A module may import its own layer
# or lower ones; a new module must be given a layer here (and in ARCHITECTURE.md).
LAYERS = {
    "keras_music.config": 0, "keras_music.progress": 0, "keras_music.tf_logging": 0,
    "keras_music.version": 0, "keras_music.errors": 0, "keras_music.precision": 0, "keras_music.remote": 0,
    "keras_music.data": 1, "keras_music.audio": 1, "keras_music.features": 1,
    "keras_music.losses": 1, "keras_music.metrics": 1, "keras_music.reports": 1, "keras_music.quadrants": 0,
    "keras_music.models": 2, "keras_music.scoring": 2,
    "keras_music.hparams": 3, "keras_music.training": 3, "keras_music.resume": 3, "keras_music.multiworker": 3,
    "keras_music.thresholds": 3,
    "keras_music.export": 4, "keras_music.serving": 4, "keras_music.tagging": 4, "keras_music.similarity": 4,
    "keras_music.train": 5, "keras_music.evaluate": 5, "keras_music.predict": 5, "keras_music.extract": 5,
    "keras_music.doctor": 5, "keras_music.default_model": 5, "keras_music.musicnn_weights": 5,
    "keras_music.beam": 5, "keras_music.api": 5, "keras_music.cli": 5, "keras_music.similar": 5,
    "keras_music.collection_report": 5,
    # The package root: the public API (keras_music/__init__.py loads api and tagging names lazily).
    "keras_music": 5,
    "tuning": 6,
    "bench": 7,
}
ROOTS = ("keras_music", "tuning", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    # The root's own entry covers the root only: a new keras_music module must be given a layer.
    prefix = max((p for p in LAYERS if module == p or (p != "keras_music" and module.startswith(p + "."))),
                 key=len, default=None)
    if prefix is None:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name} and ARCHITECTURE.md")
    return LAYERS[prefix]


def project_imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules that `path` imports (an imported name that is a module counts as one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            # `from pkg import module`: an edge to that module; `from module import name`: to the module.
            names = [m for m in submodules if m in modules] or [node.module]
        else:
            continue
        found.update(name for name in names if name in modules and name.split(".")[0] in ROOTS)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for root in ROOTS for p in (REPO / root).rglob("*.py")}
    modules = set(paths)
    graph = {}
    for module, path in paths.items():
        # `import a.b.c` runs a/__init__ and a/b/__init__ too, but those edges say nothing about
        # the author's intent; keep the named module only.
        graph[module] = project_imports(path, modules) - {module}
    return graph


def test_every_import_points_down_or_sideways():
    wrong = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
             for a, targets in import_graph().items() for b in sorted(targets) if layer(b) > layer(a)]
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", ["keras_music", "tuning"])
def test_package_never_imports_tuning_or_bench(module):
    above = {"keras_music": ("tuning", "bench"), "tuning": ("bench",)}[module]
    bad = [f"{a} imports {b}" for a, targets in import_graph().items() if a.split(".")[0] == module
           for b in targets if b.split(".")[0] in above]
    assert not bad, "\n".join(bad)


# CLIs whose `--help` and argument errors must answer without starting TensorFlow (fast; they
# start it with `tf_logging.import_tensorflow` once the arguments are good). `train` is not
# among them: its `--model` choices come from the registry, whose builders import Keras.
LIGHT_CLIS = ("evaluate", "export", "predict", "extract", "doctor", "default_model", "musicnn_weights", "cli",
              "tagging", "similar", "collection_report")


def test_light_clis_import_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys\n" + "".join(f"import keras_music.{cli}\n" for cli in LIGHT_CLIS)
            + "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing the CLIs {LIGHT_CLIS} loaded: {result.stdout.strip()}"
