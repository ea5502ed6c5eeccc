"""The house rules of the code, read from the source with ``ast`` (nothing is imported).

Walks every ``.py`` file of ``labkit/`` and ``benchmarks/`` and checks:

(a) no import cycle between modules (a module is a file; ``from labkit import x`` resolves to
    ``labkit/x.py`` or ``labkit/x/__init__.py``; relative imports too; an import inside a function is
    an edge like any other);
(b) no ``_private`` name of one module used by another (``from labkit.metrics import _foo``, or
    ``metrics._foo`` on an imported module);
(c) nothing in ``labkit/`` imports ``benchmarks`` or ``tests`` (the package stands on its own);
(d) no module of ``labkit/`` over :data:`MAX_MODULE_LINES` lines;
(e) no function body over :data:`MAX_FUNCTION_LINES` lines (its docstring not counted).

Each failure lists the offenders; (d) and (e) also print the five longest modules / functions so the
numbers are visible (``pytest -s``, and in the assertion message). The last tests run the checker on
small hand-made packages in ``tmp_path`` (a cycle, a private import...), so the checks can fail.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("labkit", "benchmarks")
#: top-level names the package must never import (besides every module file of ``tests/``)
FORBIDDEN_IN_PACKAGE = ("benchmarks", "tests")
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 100


# ----------------------------------------------------------------------------------------- the checker


@dataclass
class Module:
    name: str            # dotted: labkit.data.degrade
    path: Path
    tree: ast.Module
    is_package: bool     # an __init__.py
    imports: list[tuple[str, int]] = field(default_factory=list)  # (imported dotted name as written/resolved, line)


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def load_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Module]:
    """Every ``.py`` file under ``root/<package>/`` parsed, by dotted module name."""
    modules: dict[str, Module] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name, is_package = module_name(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            modules[name] = Module(name, path, tree, is_package)
    return modules


def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved against ``mod``."""
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if not mod.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _known_prefix(name: str, modules: dict[str, Module]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules`` (``labkit.x.f`` -> ``labkit.x``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return None


def imported_names(mod: Module) -> list[tuple[str, str | None, int]]:
    """``(module, name or None, line)`` for every import statement anywhere in the file (functions too)."""
    out = []
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(mod, node)
            out += [(base, a.name, node.lineno) for a in node.names]
    return out


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the modules (of ``modules``) it imports."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for mod in modules.values():
        for base, name, _ in imported_names(mod):
            target = None
            if name is not None and name != "*" and f"{base}.{name}" in modules:
                target = f"{base}.{name}"       # from labkit import metrics -> labkit/metrics.py
            else:
                target = _known_prefix(base, modules)
            if target and target != mod.name and target not in PACKAGES:  # the bare package __init__s import nothing
                graph[mod.name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: each strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(sccs)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def private_imports(modules: dict[str, Module]) -> list[str]:
    """``path:line: module imports _name from other`` for every private name used across modules."""
    found = []
    for mod in modules.values():
        bound: dict[str, str] = {}  # local name -> internal module it stands for
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _known_prefix(a.name, modules):
                        if a.asname:
                            bound[a.asname] = a.name
                        else:
                            bound[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(mod, node)
                for a in node.names:
                    if f"{base}.{a.name}" in modules:
                        bound[a.asname or a.name] = f"{base}.{a.name}"
                    if _known_prefix(base, modules) and base != mod.name and (
                            _private(a.name) or any(_private(p) for p in base.split("."))):
                        found.append(f"{mod.name}:{node.lineno}: {mod.name} imports {a.name} from {base}")
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                dotted = _dotted(node.value)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                if head not in bound:
                    continue
                target = bound[head] + (f".{rest}" if rest else "")
                if target in modules and target != mod.name:
                    found.append(f"{mod.name}:{node.lineno}: {mod.name} uses {target}.{node.attr}")
    return sorted(set(found))


def forbidden_imports(modules: dict[str, Module], package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports, inside ``package``, of a top-level name in ``forbidden``."""
    found = []
    for mod in modules.values():
        if mod.name.split(".")[0] != package:
            continue
        for base, name, line in imported_names(mod):
            top = base.split(".")[0]
            if top in forbidden:
                found.append(f"{mod.name}:{line}: imports {base}" + (f".{name}" if name else ""))
    return sorted(found)


def module_lengths(modules: dict[str, Module], package: str) -> list[tuple[int, str]]:
    """``(lines, module)`` of every module of ``package``, longest first."""
    rows = [(len(m.path.read_text(encoding="utf-8").splitlines()), m.name)
            for m in modules.values() if m.name.split(".")[0] == package]
    return sorted(rows, reverse=True)


def function_lengths(modules: dict[str, Module]) -> list[tuple[int, str]]:
    """``(body lines without the docstring, module:function)`` of every function and method, longest first."""
    rows = []
    for mod in modules.values():
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    body = body[1:]
                n = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                rows.append((n, f"{mod.name}:{node.lineno} {node.name}"))
    return sorted(rows, reverse=True)


def _top(rows: list[tuple[int, str]], n: int = 5) -> str:
    return "\n".join(f"  {k:5d}  {name}" for k, name in rows[:n])


# ----------------------------------------------------------------------------------------- the rules


def test_no_import_cycle():
    cycles = find_cycles(import_graph(load_modules(ROOT)))
    assert not cycles, "import cycles (each line: modules that import each other in a loop):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in cycles)


def test_no_private_name_used_across_modules():
    found = private_imports(load_modules(ROOT))
    assert not found, "private names used by another module (make them public where they belong):\n" + "\n".join(
        f"  {f}" for f in found)


def test_package_never_imports_benchmarks_or_tests():
    forbidden = FORBIDDEN_IN_PACKAGE + tuple(p.stem for p in (ROOT / "tests").glob("*.py"))
    found = forbidden_imports(load_modules(ROOT), "labkit", forbidden)
    assert not found, "labkit imports code from outside the package:\n" + "\n".join(f"  {f}" for f in found)


def test_no_long_module():
    rows = module_lengths(load_modules(ROOT), "labkit")
    print(f"\nlongest modules (lines):\n{_top(rows)}")
    long = [(n, m) for n, m in rows if n > MAX_MODULE_LINES]
    assert not long, (f"modules over {MAX_MODULE_LINES} lines:\n{_top(long, len(long))}\n"
                      f"longest modules:\n{_top(rows)}")


def test_no_long_function():
    rows = function_lengths(load_modules(ROOT))
    print(f"\nlongest functions (body lines):\n{_top(rows)}")
    long = [(n, f) for n, f in rows if n > MAX_FUNCTION_LINES]
    assert not long, (f"functions over {MAX_FUNCTION_LINES} body lines:\n{_top(long, len(long))}\n"
                      f"longest functions:\n{_top(rows)}")


# ----------------------------------------------------------------------------------------- the checker can fail


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checker_finds_cycles_private_names_and_forbidden_imports(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "def f():\n    from . import c  # inside a function: still an edge\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/sub/__init__.py": "from .inner import thing\n",
        "pkg/sub/inner.py": "from ..d import _hidden\nthing = 1\n",
        "pkg/d.py": "_hidden = 1\n",
        "pkg/e.py": "from pkg import d\nfrom pkg import sub\nx = d._hidden\ny = sub.thing\n",
        "pkg/f.py": "def g():\n    import benchmarks.suite\n    from tests import layouts\n",
        "pkg/ok.py": "from __future__ import annotations\nfrom pkg.d import __doc__\n_mine = 1\nz = _mine\n",
    })
    modules = load_modules(tmp_path, ("pkg",))
    graph = import_graph(modules)
    assert graph["pkg.sub"] == {"pkg.sub.inner"} and graph["pkg.sub.inner"] == {"pkg.d"}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    found = private_imports(modules)
    assert len(found) == 2 and any("pkg.sub.inner imports _hidden from pkg.d" in f for f in found)
    assert any("pkg.e uses pkg.d._hidden" in f for f in found)
    forbidden = forbidden_imports(modules, "pkg", ("benchmarks", "tests"))
    assert forbidden == ["pkg.f:2: imports benchmarks.suite", "pkg.f:3: imports tests.layouts"]


def test_checker_measures_modules_and_function_bodies(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(120))
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/long.py": f'def long():\n    """Doc.\n\n    more doc\n    """\n{body}\n\n\ndef short():\n    """Only a doc."""\n',
    })
    modules = load_modules(tmp_path, ("pkg",))
    funcs = dict((name.split(" ")[1], n) for n, name in function_lengths(modules))
    assert funcs == {"long": 120, "short": 0}      # the docstring is not counted
    assert module_lengths(modules, "pkg")[0] == (len((tmp_path / "pkg/long.py").read_text().splitlines()), "pkg.long")
    assert find_cycles(import_graph(modules)) == []


def test_no_merge_conflict_markers_in_the_tracked_text():
    """A merge left `<<<<<<< HEAD ... >>>>>>> branch` in a docstring once; git would not have stopped it."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "*.txt", "*.cfg", "*.sh", "*.yml", "Makefile"],
                           cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    marker = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)
    found = [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for name in files.stdout.split()
             for text in [(ROOT / name).read_text(encoding="utf-8", errors="replace")] for m in marker.finditer(text)]
    assert not found, "merge conflict markers:\n" + "\n".join(f"  {f}" for f in found)
