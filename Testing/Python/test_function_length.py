"""No function in the package is longer than 100 lines (split long ones into named stages).

``PENDING`` lists the functions still over the limit, each with the helper that owns the file; an entry
must still be over the limit (so the list only shrinks) and nothing else may exceed it.
"""
from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 100
PACKAGES = [Path(__file__).resolve().parents[2] / "BreastLesionSeg" / name
            for name in ("breastlesionseg", "BreastLesionSegLib")]
#: "relative/path.py:function" of functions still over the limit (to be split by the file's owner)
PENDING: set[str] = set()


def long_functions(packages: list[Path] = PACKAGES, max_lines: int = MAX_LINES) -> dict[str, int]:
    """``{"pkg/path.py:name": lines}`` of every function or method longer than ``max_lines``."""
    found: dict[str, int] = {}
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > max_lines:
                        found[f"{path.relative_to(package.parent).as_posix()}:{node.name}"] = lines
    return found


def test_the_length_check_sees_a_long_function(tmp_path):
    pkg = tmp_path / "breastlesionseg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (pkg / "long.py").write_text(f"def too_long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert long_functions([pkg]) == {"breastlesionseg/long.py:too_long": MAX_LINES + 1}


def test_no_function_is_longer_than_100_lines():
    found = long_functions()
    new = {k: v for k, v in found.items() if k not in PENDING}
    assert not new, f"functions over {MAX_LINES} lines (split them into named stages): {new}"


def test_the_pending_list_only_shrinks():
    fixed = sorted(PENDING - set(long_functions()))
    assert not fixed, f"no longer over {MAX_LINES} lines, remove from PENDING: {fixed}"
