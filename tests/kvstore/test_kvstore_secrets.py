"""Secrets in store URLs, malformed URLs, prefixes, unencodable text (issue 10)."""

from __future__ import annotations

import textwrap

import pytest

from finchan._secrets import mask_secrets
from finchan.errors import StoreError
from finchan.kvstore import open_store
from finchan_testing import run_finchan

SECRET = "S3cr3tPw"
#: a database of this helper's own (see COMMON.md); the tests only connect to it
DB = 8


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    (f"redis://user:{SECRET}@host/0", "redis://user:***@host/0"),
    (f"redis://:p@ss{SECRET}@host/0", "redis://:***@host/0"),
    (f"redis://host/0?password={SECRET}&x=1", "redis://host/0?password=***&x=1"),
    (f"unix:///tmp/r.sock?db=1&password={SECRET}", "unix:///tmp/r.sock?db=1&password=***"),
    ("redis://host:6379/0", "redis://host:6379/0"),
])
def test_mask_secrets(url, shown):
    assert mask_secrets(f"at {url!r}.") == f"at {shown!r}."


@pytest.mark.parametrize(("url", "value"), [
    ("redis://127.0.0.1:6379/9x", "9x"),
    (f"redis://:{SECRET}@127.0.0.1:6379/1 ", "1 "),
    ("redis://127.0.0.1:6379/1?db=x", "x"),
])
def test_malformed_database_number_is_an_error(url, value):
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert f"database {value!r} is not a number" in str(info.value)
    assert SECRET not in str(info.value)


def test_prefixes_end_with_the_separator():
    with pytest.raises(StoreError) as info:
        open_store("memory://", prefix="a")
    assert str(info.value) == (
        "kvstore prefix 'a' must end with ':' (e.g. 'a:'), so that two prefixes cannot "
        "collide ('a' + 'bc' and 'ab' + 'c' are the same key)"
    )


def test_prefixed_stores_do_not_see_each_others_keys(tmp_path):
    path = tmp_path / "s.db"
    with open_store(path, prefix="a:") as a, open_store(path, prefix="ab:") as ab:
        a.set("bc", "from a")
        ab.set("c", "from ab")
        assert (a.get("bc"), ab.get("c"), a.get("b:c"), ab.get("bc")) == (
            "from a", "from ab", None, None)


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.set("k", "\udc80"), "set 'p:k': '\\udc80' is not valid text"),
    (lambda s: s.get("k\ud800"), "get: 'p:k\\ud800' is not valid text"),
    (lambda s: s.hset("h", "f\udc80", "v"), "hset 'p:h': 'f\\udc80' is not valid text"),
    (lambda s: s.rpush("l", "a", "\ud800"), "rpush 'p:l': '\\ud800' is not valid text"),
    (lambda s: s.mset({"a": "\udc80"}), "mset: '\\udc80' is not valid text"),
    (lambda s: s.pipeline().set("a", "\udc80"), "set 'p:a': '\\udc80' is not valid text"),
])
def test_unencodable_text_is_a_store_error_on_every_backend(store_kind, tmp_path, call, message,
                                                            request):
    url = {"memory": "memory://", "sqlite": str(tmp_path / "s.db")}.get(store_kind)
    if url is None:
        url = request.getfixturevalue("redis_url")
    with open_store(url, prefix="p:") as store:
        with pytest.raises(StoreError) as info:
            call(store)
        assert str(info.value) == f"{message} (a lone surrogate cannot be encoded as UTF-8)"
        store.set("after", "ok")
        assert store.get("after") == "ok"


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.services)])
def store_kind(request):
    return request.param


def _config(tmp_path, url, extra=""):
    path = tmp_path / "finchan.yml"
    path.write_text(textwrap.dedent(f"""
        work_dir: {tmp_path / 'work'}
        enabled_backtest_exts: [finchan.exts.kvstore, finchan.exts.bars, finchan.exts.strategy]
        backtest_exts:
          finchan.exts.kvstore: {{url: '{url}', prefix: 'sma:'}}
          finchan.exts.bars: {{synthetic: {{n: 300}}}}
          finchan.exts.strategy: {{class: finchan.trade.examples:SmaCross, report: false}}
    """) + extra)
    return path


def _leaks(tmp_path, result) -> list[str]:
    """Where the secret appears: stdout, stderr, any file of the work dir (logs, run dir)."""
    found = [name for name, text in (("stdout", result.stdout), ("stderr", result.stderr))
             if SECRET in text]
    found += [str(p) for p in (tmp_path / "work").rglob("*")
              if p.is_file() and p.suffix != ".db" and SECRET.encode() in p.read_bytes()]
    return found


def test_a_password_is_never_printed_logged_or_saved(tmp_path, redis_server):
    url = f"redis://:{SECRET}@127.0.0.1:6379/{DB}"
    ok = run_finchan("-c", str(_config(tmp_path, url)), "-vv")
    assert ok.returncode == 0, ok.stderr
    assert "redis://:***@127.0.0.1:6379/8" in ok.stderr  # the log line names the store
    log = (tmp_path / "work" / "logs" / "finchan.log").read_text()
    assert "redis://:***@127.0.0.1:6379/8" in log
    run_dir = next((tmp_path / "work" / "runs").iterdir())
    assert f"url: redis://:***@127.0.0.1:6379/{DB}" in (run_dir / "config.yml").read_text()
    assert _leaks(tmp_path, ok) == []


@pytest.mark.parametrize("url", [
    f"redis://nobody:{SECRET}@127.0.0.1:6379/{DB}",  # refused by the server (or unreachable)
    f"redis://127.0.0.1:6379/9x?password={SECRET}",  # malformed database number
    f"redis://:{SECRET}@127.0.0.1:1/{DB}",  # nothing listens on port 1
])
def test_a_password_is_not_in_errors_or_tracebacks(tmp_path, url):
    result = run_finchan("-c", str(_config(tmp_path, url)), "-vvv")
    assert result.returncode == 2, result.stderr
    assert "Traceback" in result.stderr and "finchan: error: " in result.stderr
    assert _leaks(tmp_path, result) == []


def test_a_password_echoed_by_a_config_error_is_masked(tmp_path):
    path = _config(tmp_path, "x", extra=f"seed: ['redis://:{SECRET}@h/0']\n")
    result = run_finchan("-c", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"finchan: error: {path}: seed: not an integer (got ['redis://:***@h/0'])"
    )


def test_handlers_a_log_config_sets_up_mask_secrets_too(tmp_path):
    import logging

    from finchan.log import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(0, tmp_path, {"handlers": {"f": {"class": "logging.FileHandler",
                                                       "filename": "mine.log"}},
                                    "root": {"handlers": ["f"], "level": "INFO"},
                                    "disable_existing_loggers": False})
        logger = logging.getLogger("finchan.test_secrets")
        logger.info("opened %s", f"redis://:{SECRET}@h/0")
        try:
            raise ValueError(f"redis://u:{SECRET}@h/0 refused")
        except ValueError:
            logger.exception("failed")
        for handler in root.handlers:
            handler.flush()
        text = (tmp_path / "mine.log").read_text()
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert "opened redis://:***@h/0" in text and "ValueError: redis://u:***@h/0 refused" in text
    assert SECRET not in text
