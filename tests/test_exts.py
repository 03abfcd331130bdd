"""ExtManager: names, groups, requirements, errors, paths, entry points, unloading."""

import sys
import textwrap

import pytest

from finchan.errors import ExtensionError


def test_groups_expand_recursively_and_requirements_load_first(make_env):
    env = make_env(
        {
            "ext_groups": {"all": ["inner", "finchan.exts.timer_callback"], "inner": ["second"]},
            "enabled_backtest_exts": ["all"],
        }
    )
    env.load_exts()
    assert env.ext_manager.loaded == (
        "finchan.exts.timer_source",
        "recorder",
        "second",
        "finchan.exts.timer_callback",
    )


def test_load_exts_with_options_mapping_overrides_config(make_env):
    env = make_env({"backtest_exts": {"recorder": {"echo": False, "x": 1}}})
    env.ext_manager.load_exts({"recorder": {"x": 2}})
    assert env.get_ext_options("recorder") == {"x": 2}


def test_dependency_cycle_is_named(make_env):
    env = make_env()
    with pytest.raises(
        ExtensionError, match="extension dependency cycle: cycle_a -> cycle_b -> cycle_a"
    ):
        env.load_exts("cycle_a")


def test_missing_extension_is_named(make_env):
    env = make_env()
    with pytest.raises(
        ExtensionError, match="extension 'nope.missing' not found: no module 'nope'"
    ):
        env.load_exts("nope.missing")


def test_extension_failing_to_import_names_it_and_the_cause(make_env):
    env = make_env()
    with pytest.raises(ExtensionError) as info:
        env.load_exts("broken_import")
    message = str(info.value)
    assert message.startswith(
        "extension 'broken_import' failed to import: ModuleNotFoundError: "
        "No module named 'this_module_does_not_exist'"
    )
    assert "broken_import.py:3)" in message


def test_module_without_loader_is_refused(make_env):
    with pytest.raises(ExtensionError, match="'no_loader' .* has no load_finchan_ext"):
        make_env().load_exts("no_loader")


def test_group_cycle_is_named(make_env):
    env = make_env({"ext_groups": {"g1": ["g2"], "g2": ["g1"]}})
    with pytest.raises(ExtensionError, match="group cycle: g1 -> g2 -> g1"):
        env.load_exts("g1")


def test_ext_paths_and_old_ext_path_are_added_to_sys_path(make_env, tmp_path):
    for folder, module in (("new", "path_ext_new"), ("old", "path_ext_old")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{module}.py").write_text(
            f"def load_finchan_ext(env):\n    env.set_ext_obj('{module}', True)\n"
        )
    env = make_env(
        {"ext_manager": {"ext_paths": [str(tmp_path / "new")], "ext_path": str(tmp_path / "old")}}
    )
    env.load_exts("path_ext_new", "path_ext_old")
    assert env.get_ext_obj("path_ext_new") and env.get_ext_obj("path_ext_old")
    assert str(tmp_path / "new") in sys.path and str(tmp_path / "old") in sys.path


def test_installed_extensions_are_found_by_entry_point(make_env, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "acme_pkg").mkdir(parents=True)
    (site / "acme_pkg" / "__init__.py").write_text("")
    (site / "acme_pkg" / "ext.py").write_text(
        textwrap.dedent("""
        def load_finchan_ext(env):
            env.set_ext_obj("acme", "loaded by entry point")
    """)
    )
    dist = site / "acme_finchan-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-finchan\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[finchan.exts]\nacme = acme_pkg.ext\n")
    monkeypatch.syspath_prepend(str(site))
    env = make_env()
    env.load_exts("acme")
    assert env.get_ext_obj("acme") == "loaded by entry point"
    assert env.ext_manager.loaded == ("acme",)


def test_unloading_calls_unload_in_reverse_order(make_env):
    env = make_env()
    env.load_exts("finchan.exts.timer_callback")
    scheduler = env.get_ext_obj("finchan.exts.timer_source")
    scheduler.run_every(1).days().do(print)
    env.ext_manager.unload_exts()
    assert env.ext_manager.loaded == ()
    assert scheduler.jobs == []
    with pytest.raises(ExtensionError, match="'recorder' is not loaded"):
        env.ext_manager.unload_ext("recorder")
