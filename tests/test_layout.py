"""The layout is a contract: the core stands alone, the kit's extensions keep their names.

The core (everything in ``finchan`` outside ``finchan.trade`` and
``finchan.kvstore``) imports neither, not even inside a function; the
trading kit's extensions live in ``finchan.trade.exts`` and configs still
name them ``finchan.exts.*`` through entry points, which the extension
manager consults before importing a name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import finchan

PACKAGE = Path(finchan.__file__).parent
OUTSIDE_THE_CORE = ("finchan.trade", "finchan.kvstore")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_files() -> list[Path]:
    files = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if not any(name == p or name.startswith(p + ".") for p in OUTSIDE_THE_CORE):
            files.append(path)
    return files


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement names, at any depth (relative ones resolved)."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_core_files_are_the_ones_expected():
    names = {module_name(p) for p in core_files()}
    assert {"finchan.event", "finchan.env", "finchan.config", "finchan.cli", "finchan.exts._manager",
            "finchan.exts.timer_source", "finchan.dispatcher._base", "finchan.interface.kvstore"} <= names
    assert not any(n.startswith(OUTSIDE_THE_CORE) for n in names)
    assert "finchan.exts.bars" not in names and "finchan.exts.kvstore" not in names


def test_no_core_module_imports_the_trading_kit_or_a_store_backend():
    offenders = {
        module_name(path): sorted(
            name for name in imported_modules(path)
            if any(name == p or name.startswith(p + ".") for p in OUTSIDE_THE_CORE)
        )
        for path in core_files()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_a_whole_core_run_loads_neither_the_kit_nor_the_stores():
    code = textwrap.dedent("""
        import sys
        import finchan.cli, finchan.config, finchan.log
        from finchan.env import Env
        env = Env({"dispatcher.backtest": {"start_dt": "2020-01-01", "end_dt": "2020-01-02"}})
        env.load_exts("finchan.exts.timer_callback")
        env.run()
        print(sorted(m for m in sys.modules if m.startswith(("finchan.trade", "finchan.kvstore"))))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_class_is_patched_with_setattr_at_import():
    patched = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for statement in tree.body:  # module level only: inside functions it is run time
            for node in ast.walk(statement):
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    break
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id == "setattr"):
                    patched.append(f"{module_name(path)}:{node.lineno}")
    assert patched == []


def test_the_original_extension_names_are_entry_points_to_their_new_modules():
    found = {ep.name: ep.value for ep in entry_points(group="finchan.exts")}
    assert {name: found.get(name) for name in (
        "finchan.exts.bars", "finchan.exts.sim_broker", "finchan.exts.strategy", "finchan.exts.kvstore",
    )} == {
        "finchan.exts.bars": "finchan.trade.exts.bars",
        "finchan.exts.sim_broker": "finchan.trade.exts.sim_broker",
        "finchan.exts.strategy": "finchan.trade.exts.strategy",
        "finchan.exts.kvstore": "finchan.kvstore.ext",
    }
    for old in ("bars", "sim_broker", "strategy", "kvstore"):
        assert not (PACKAGE / "exts" / f"{old}.py").exists()  # moved, no alias file left


def test_an_old_name_in_a_config_loads_the_moved_module(make_env):
    import finchan.trade.exts.sim_broker as moved

    env = make_env({"backtrack_exts": {"finchan.exts.sim_broker": {"cash": 5000}}})
    env.load_exts("finchan.exts.sim_broker")
    assert env.ext_manager.get_ext("finchan.exts.sim_broker") is moved
    assert env.get_ext_obj("finchan.exts.sim_broker").broker.portfolio.cash == 5000


def test_entry_points_are_consulted_before_importing_a_name(make_env, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "real_pkg").mkdir(parents=True)
    (site / "real_pkg" / "__init__.py").write_text("")
    (site / "real_pkg" / "ext.py").write_text(
        "def load_finchan_ext(env):\n    env.set_ext_obj('shadowed', 'from the entry point')\n"
    )
    # a module of the same name that must not be imported
    (site / "shadowed.py").write_text("raise RuntimeError('imported the module, not the entry point')\n")
    dist = site / "shadow_finchan-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shadow-finchan\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[finchan.exts]\nshadowed = real_pkg.ext\n")
    monkeypatch.syspath_prepend(str(site))
    env = make_env()
    env.load_exts("shadowed")
    assert env.get_ext_obj("shadowed") == "from the entry point"
    assert "shadowed" not in sys.modules


def test_backtest_wires_the_kit_extensions_as_modules(monkeypatch):
    """backtest() hands the modules over: no name is looked up, not even by entry point."""
    from finchan.exts import _manager
    from finchan.trade import backtest
    from finchan.trade._synthetic import make_bars
    from finchan.trade.examples import SmaCross

    def no_lookup(self, name):
        raise AssertionError(f"looked up {name!r}")

    monkeypatch.setattr(_manager.ExtManager, "_import", no_lookup)
    result = backtest(SmaCross, {"SYN": make_bars(300)}, cash=1_000_000)
    assert result.final_equity > 0


def test_a_module_over_500_lines_says_why_at_its_top():
    # issue 9: "no module over about 500 lines without a reason written at its top"
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") <= 520:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(word in doc for word in ("Size:", "Layout:", "Longer than")):
            unexplained.append(f"{module_name(path)} ({text.count(chr(10))} lines)")
    assert unexplained == []


def test_an_order_carries_no_broker_working_state():
    from finchan.trade.orders import Order

    private = [name for name in Order.__slots__ if name.startswith("_")]
    assert private == []
