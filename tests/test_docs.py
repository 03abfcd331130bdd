"""The README's and the docs' python blocks run, in order, one namespace per file."""

import os
import re
from pathlib import Path

import pytest

from finchan_testing import ROOT

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_python_blocks_run(doc, tmp_path, monkeypatch):
    blocks = python_blocks(doc)
    if doc.name == "README.md":
        assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    namespace = {"__name__": f"doc_{doc.stem}"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{doc.name} python block {number}", "exec")
        exec(code, namespace)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.M).group(1)
    assert f"\n{command}\n" in readme
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def _modules_with_examples() -> list[str]:
    src = ROOT / "src"
    names = []
    for path in sorted((src / "finchan").rglob("*.py")):
        if path.name != "__main__.py" and ">>> " in path.read_text():
            parts = path.relative_to(src).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
