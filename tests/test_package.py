"""Packaging promises: a light core, the public names, the entry points."""

import subprocess
import sys

HEAVY = ("pandas", "numpy", "pyarrow", "plotly", "pydantic", "ruamel", "rich", "redis", "click",
         "finchan.trade", "finchan.kvstore")


def imported_after(code):
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return {name for name in out if name.split(".")[0] in {h.split(".")[0] for h in HEAVY}
            and any(name == h or name.startswith(h + ".") for h in HEAVY)}


def test_core_import_pulls_in_no_heavy_library_and_not_the_trading_kit():
    code = ("import finchan, finchan.event, finchan.env, finchan.dispatcher, finchan.exts, "
            "finchan.interface.event_source, finchan.errors, finchan.log")
    assert imported_after(code) == set()


def test_public_modules_declare_all():
    import finchan.dispatcher
    import finchan.env
    import finchan.event
    import finchan.exts

    assert finchan.event.__all__ == ["Event", "SysEvents"]
    assert set(finchan.dispatcher.__all__) == {"BackTrackDispatcher", "Dispatcher", "LiveDispatcher"}
    assert {"Env", "env"} <= set(finchan.env.__all__)
    assert "ExtManager" in finchan.exts.__all__


def test_trading_kit_names_resolve_lazily():
    import finchan.trade

    for name in finchan.trade.__all__:
        assert getattr(finchan.trade, name) is not None
