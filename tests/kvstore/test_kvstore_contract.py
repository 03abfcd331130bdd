"""The AbsKvStore contract: the same assertions on every backend (memory, SQLite, Redis).

The expected values are redis-py's with ``decode_responses=True``.
"""

from __future__ import annotations

import enum

import numpy as np
import pytest

from finchan.errors import StoreError, WrongTypeError
from finchan.interface.kvstore import AbsKvStore

MB = 1 << 20


class Side(enum.IntEnum):
    BUY = 1


def redis_range(items: list[str], start: int, end: int) -> list[str]:
    """LRANGE's rules, written out: negative from the tail, end included, clipped."""
    n = len(items)
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = n + end
    end = min(end, n - 1)
    return items[start:end + 1] if start <= end else []


def make_types(store: AbsKvStore) -> None:
    """``s`` a string, ``h`` a hash, ``l`` a list."""
    store.set("s", "v")
    store.hset("h", "f", "v")
    store.rpush("l", "v")


# -- strings ------------------------------------------------------------------------------
def test_set_returns_true_and_get_returns_the_value(store: AbsKvStore) -> None:
    assert store.set("a", "hello") is True
    assert store.get("a") == "hello"


def test_get_of_a_missing_key_is_none(store: AbsKvStore) -> None:
    assert store.get("missing") is None


VALUES = [
    (1, "1"), (-7, "-7"), (1.5, "1.5"), (1e20, "1e+20"), (float("inf"), "inf"),
    (10**30, "1" + "0" * 30), (b"caf\xc3\xa9", "café"), (bytearray(b"ab"), "ab"),
    (Side.BUY, "1"), ("", ""), (np.int64(-3), "-3"), (np.float64(2.5), "2.5"),
]


def test_values_are_stored_in_their_string_form(store: AbsKvStore) -> None:
    for value, stored in VALUES:
        store.set("n", value)  # type: ignore[arg-type]
        assert store.get("n") == stored, value


def test_values_redis_py_refuses_raise_store_error(store: AbsKvStore) -> None:
    for value in (None, True, False, object(), {"a": 1}, [1], b"\xff"):
        with pytest.raises(StoreError, match="set '(strategy-a:)?x'"):
            store.set("x", value)  # type: ignore[arg-type]
        assert store.get("x") is None


def test_key_names_are_encoded_like_values(store: AbsKvStore) -> None:
    store.set(1, "one")
    store.set(b"two", "2")
    assert store.get("1") == "one"
    assert store.mget(["two", 1]) == ["2", "one"]
    with pytest.raises(StoreError):
        store.get(None)  # type: ignore[arg-type]


def test_set_nx_only_sets_a_missing_key(store: AbsKvStore) -> None:
    assert store.set("a", 1, nx=True) is True
    assert store.set("a", 2, nx=True) is None
    assert store.get("a") == "1"


def test_set_xx_only_sets_an_existing_key(store: AbsKvStore) -> None:
    assert store.set("a", 1, xx=True) is None
    assert store.get("a") is None
    store.set("a", 1)
    assert store.set("a", 2, xx=True) is True
    assert store.get("a") == "2"


def test_set_get_returns_the_old_value(store: AbsKvStore) -> None:
    assert store.set("a", 1, get=True) is None
    assert store.set("a", 2, get=True) == "1"
    assert store.set("a", 3, nx=True, get=True) == "2"
    assert store.get("a") == "2"


def test_set_nx_and_xx_together_is_refused(store: AbsKvStore) -> None:
    with pytest.raises(StoreError, match="mutually exclusive"):
        store.set("a", 1, nx=True, xx=True)


def test_set_replaces_a_hash_or_a_list(store: AbsKvStore) -> None:
    make_types(store)
    assert store.set("h", "now a string") is True
    assert store.set("l", "me too", xx=True) is True
    assert store.mget("h", "l") == ["now a string", "me too"]
    with pytest.raises(WrongTypeError):
        store.hgetall("h")
    assert store.rpush("l2", "x") == 1


def test_set_get_on_a_hash_raises_wrong_type_and_changes_nothing(store: AbsKvStore) -> None:
    make_types(store)
    with pytest.raises(WrongTypeError, match="WRONGTYPE"):
        store.set("h", "x", get=True)
    assert store.hgetall("h") == {"f": "v"}


def test_mset_takes_a_dict_or_keyword_arguments(store: AbsKvStore) -> None:
    assert store.mset({"a": 1, "b": "x"}) is True
    assert store.mset(c=2.5) is True
    assert store.mset({"d": "dict wins"}, d="kwarg") is True
    assert store.mget("a", "b", "c", "d") == ["1", "x", "2.5", "dict wins"]


def test_mset_overwrites_keys_of_every_type(store: AbsKvStore) -> None:
    make_types(store)
    store.mset({"s": 1, "h": 2, "l": 3, "new": 4})
    assert store.mget(["s", "h", "l", "new"]) == ["1", "2", "3", "4"]
    with pytest.raises(WrongTypeError):
        store.hlen("h")
    with pytest.raises(WrongTypeError):
        store.llen("l")


@pytest.mark.parametrize(("args", "kwargs"), [((), {}), (({},), {}), (({"a": 1}, {"b": 2}), {}),
                                              ((["a", 1],), {})])
def test_mset_without_a_single_mapping_raises(store: AbsKvStore, args: tuple, kwargs: dict) -> None:
    with pytest.raises(StoreError, match="mset"):
        store.mset(*args, **kwargs)


def test_mget_takes_a_list_or_several_keys(store: AbsKvStore) -> None:
    store.mset({"a": 1, "b": 2})
    assert store.mget(["a", "b", "zz"]) == ["1", "2", None]
    assert store.mget("a", "b") == ["1", "2"]
    assert store.mget(["a"], "b") == ["1", "2"]
    assert store.mget("a") == ["1"]
    assert store.mget(("b", "a")) == ["2", "1"]
    assert store.mget([]) == []


def test_mget_gives_none_for_keys_that_are_not_strings(store: AbsKvStore) -> None:
    make_types(store)
    assert store.mget("s", "h", "l", "missing") == ["v", None, None, None]


def test_setnx_returns_whether_it_set(store: AbsKvStore) -> None:
    assert store.setnx("a", 1) is True
    assert store.setnx("a", 2) is False
    store.hset("h", "f", 1)
    assert store.setnx("h", 2) is False
    assert store.get("a") == "1"
    assert store.hget("h", "f") == "1"


def test_delete_counts_the_keys_that_existed_of_any_type(store: AbsKvStore) -> None:
    make_types(store)
    assert store.delete("s", "h", "missing") == 2
    assert store.delete("l", "l") == 1
    assert store.mget("s", "h", "l") == [None, None, None]
    assert store.hgetall("h") == {}
    assert store.lrange("l", 0, -1) == []
    assert store.delete("s") == 0


def test_delete_without_names_raises(store: AbsKvStore) -> None:
    with pytest.raises(StoreError, match="delete"):
        store.delete()


def test_a_deleted_hash_can_come_back_as_a_list(store: AbsKvStore) -> None:
    store.hset("k", "f", 1)
    store.delete("k")
    assert store.rpush("k", 1, 2) == 2
    assert store.lrange("k", 0, -1) == ["1", "2"]


# -- hashes ---------------------------------------------------------------------------------
def test_hset_returns_1_for_a_new_field_and_0_for_an_update(store: AbsKvStore) -> None:
    assert store.hset("h", "f", 1) == 1
    assert store.hset("h", "f", 2) == 0
    assert store.hget("h", "f") == "2"


def test_hset_takes_mapping_and_items_and_the_last_value_wins(store: AbsKvStore) -> None:
    store.hset("h", "a", 0)
    added = store.hset("h", "a", 1, mapping={"b": 2, "a": 3}, items=["c", 4, "a", 5])
    assert added == 2  # b and c; a existed
    assert store.hgetall("h") == {"a": "3", "b": "2", "c": "4"}


def test_hset_counts_a_field_given_twice_once(store: AbsKvStore) -> None:
    assert store.hset("h", items=["x", 1, "x", 2, "y", 3]) == 2
    assert store.hgetall("h") == {"x": "2", "y": "3"}


def test_hset_with_numbers_as_fields_stores_their_string_form(store: AbsKvStore) -> None:
    store.hset("h", 1, 2.5)
    assert store.hgetall("h") == {"1": "2.5"}
    assert store.hget("h", 1) == "2.5"


@pytest.mark.parametrize("kwargs", [{}, {"mapping": {}}, {"items": []}, {"items": ["odd"]},
                                    {"key": "f", "value": None}])
def test_hset_without_complete_pairs_raises(store: AbsKvStore, kwargs: dict) -> None:
    with pytest.raises(StoreError, match="hset '(strategy-a:)?h'"):
        store.hset("h", **kwargs)
    assert store.hgetall("h") == {}


def test_hget_of_a_missing_field_or_key_is_none(store: AbsKvStore) -> None:
    store.hset("h", "f", 1)
    assert store.hget("h", "g") is None
    assert store.hget("nohash", "f") is None


def test_hmset_sets_every_field_and_returns_true(store: AbsKvStore) -> None:
    assert store.hmset("h", {"a": 1, "b": 2}) is True
    assert store.hmset("h", {"b": 3}) is True
    assert store.hgetall("h") == {"a": "1", "b": "3"}
    with pytest.raises(StoreError, match="hmset '(strategy-a:)?h'"):
        store.hmset("h", {})


def test_hmget_takes_a_list_or_several_fields(store: AbsKvStore) -> None:
    store.hset("h", mapping={"a": 1, "b": 2})
    assert store.hmget("h", ["a", "x", "b"]) == ["1", None, "2"]
    assert store.hmget("h", "b", "a") == ["2", "1"]
    assert store.hmget("h", ["a"], "b") == ["1", "2"]
    assert store.hmget("missing", "a", "b") == [None, None]
    with pytest.raises(StoreError, match="hmget '(strategy-a:)?h'"):
        store.hmget("h", [])


def test_hgetall_hkeys_hvals_hlen_describe_the_same_hash(store: AbsKvStore) -> None:
    fields = {f"f{i}": str(i * i) for i in range(30)}
    store.hset("h", mapping=fields)
    assert store.hgetall("h") == fields
    keys, values = store.hkeys("h"), store.hvals("h")
    assert sorted(keys) == sorted(fields)
    assert dict(zip(keys, values)) == fields  # same order in both
    assert store.hlen("h") == 30


def test_hash_reads_of_a_missing_key_are_empty(store: AbsKvStore) -> None:
    assert store.hgetall("h") == {}
    assert store.hkeys("h") == []
    assert store.hvals("h") == []
    assert store.hlen("h") == 0
    assert store.hexists("h", "f") is False


def test_hsetnx_sets_only_a_missing_field(store: AbsKvStore) -> None:
    assert store.hsetnx("h", "f", 1) == 1
    assert store.hsetnx("h", "f", 2) == 0
    assert store.hget("h", "f") == "1"


def test_hdel_counts_removed_fields(store: AbsKvStore) -> None:
    store.hset("h", mapping={"a": 1, "b": 2, "c": 3})
    assert store.hdel("h", "a", "x", "a") == 1
    assert store.hdel("missing", "a") == 0
    assert store.hgetall("h") == {"b": "2", "c": "3"}
    with pytest.raises(StoreError, match="hdel '(strategy-a:)?h'"):
        store.hdel("h")


def test_a_hash_left_empty_ceases_to_exist(store: AbsKvStore) -> None:
    store.hset("h", mapping={"a": 1, "b": 2})
    assert store.hdel("h", "a", "b") == 2
    assert store.setnx("h", "free again") is True
    assert store.get("h") == "free again"


def test_hexists_is_a_boolean(store: AbsKvStore) -> None:
    store.hset("h", "f", "")
    assert store.hexists("h", "f") is True
    assert store.hexists("h", "g") is False


# -- lists ----------------------------------------------------------------------------------
def test_lpush_pushes_each_value_onto_the_head(store: AbsKvStore) -> None:
    assert store.lpush("l", 1, 2) == 2
    assert store.lpush("l", 3) == 3
    assert store.lrange("l", 0, -1) == ["3", "2", "1"]


def test_rpush_pushes_onto_the_tail(store: AbsKvStore) -> None:
    assert store.rpush("l", 1) == 1
    assert store.rpush("l", 2, 3) == 3
    assert store.lpush("l", 0) == 4
    assert store.lrange("l", 0, -1) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("op", ["lpush", "rpush"])
def test_push_without_values_raises(store: AbsKvStore, op: str) -> None:
    with pytest.raises(StoreError, match=f"{op} '(strategy-a:)?l'"):
        getattr(store, op)("l")


def test_lpop_and_rpop_take_from_each_end(store: AbsKvStore) -> None:
    store.rpush("l", "a", "b", "c", "d", "e")
    assert store.lpop("l") == "a"
    assert store.rpop("l") == "e"
    assert store.lpop("l", 2) == ["b", "c"]
    assert store.rpop("l", 5) == ["d"]
    assert store.lpop("l") is None
    assert store.llen("l") == 0


def test_pop_with_count_returns_the_last_first_from_the_tail(store: AbsKvStore) -> None:
    store.rpush("l", 1, 2, 3, 4)
    assert store.rpop("l", 2) == ["4", "3"]
    assert store.lrange("l", 0, -1) == ["1", "2"]


def test_pop_with_count_zero_gives_an_empty_list_and_none_for_a_missing_key(
        store: AbsKvStore) -> None:
    store.rpush("l", 1)
    assert store.lpop("l", 0) == []
    assert store.rpop("l", 0) == []
    assert store.lpop("missing", 0) is None
    assert store.rpop("missing", 3) is None
    assert store.llen("l") == 1


@pytest.mark.parametrize("count", [-1, 1.5, "2", True])
def test_pop_with_a_bad_count_raises(store: AbsKvStore, count: object) -> None:
    store.rpush("l", 1)
    with pytest.raises(StoreError, match="lpop '(strategy-a:)?l'"):
        store.lpop("l", count)  # type: ignore[arg-type]
    assert store.llen("l") == 1


def test_a_list_left_empty_ceases_to_exist(store: AbsKvStore) -> None:
    store.rpush("l", 1, 2)
    store.lpop("l", 2)
    assert store.hset("l", "f", 1) == 1


def test_lrange_follows_redis_rules_for_every_start_and_end(store: AbsKvStore) -> None:
    items = ["a", "b", "c", "d", "e"]
    store.rpush("l", *items)
    for start in range(-7, 8):
        for end in range(-7, 8):
            assert store.lrange("l", start, end) == redis_range(items, start, end), (start, end)
    assert store.lrange("missing", 0, -1) == []


def test_lrange_after_pushes_and_pops_at_both_ends(store: AbsKvStore) -> None:
    store.rpush("l", 3, 4)
    store.lpush("l", 2, 1)
    store.rpush("l", 5)
    store.lpop("l")
    store.rpop("l")
    assert store.lrange("l", 0, -1) == ["2", "3", "4"]
    assert store.lrange("l", -2, -1) == ["3", "4"]
    assert store.lrange("l", 1, 1) == ["3"]


def test_lrange_accepts_huge_indices_and_refuses_non_integers(store: AbsKvStore) -> None:
    store.rpush("l", 1, 2)
    assert store.lrange("l", -(2**63), 2**63 - 1) == ["1", "2"]
    for bad in (0.5, "0", None, True):
        with pytest.raises(StoreError, match="lrange '(strategy-a:)?l'"):
            store.lrange("l", bad, -1)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="out of range"):
        store.lrange("l", 2**63, -1)


def test_lset_sets_by_index_from_either_end(store: AbsKvStore) -> None:
    store.rpush("l", "a", "b", "c")
    assert store.lset("l", 0, "A") is True
    assert store.lset("l", -1, "C") is True
    assert store.lset("l", 1, 2) is True
    assert store.lrange("l", 0, -1) == ["A", "2", "C"]


@pytest.mark.parametrize("index", [3, -4, 100])
def test_lset_out_of_range_raises(store: AbsKvStore, index: int) -> None:
    store.rpush("l", "a", "b", "c")
    with pytest.raises(StoreError, match="lset '(strategy-a:)?l'.*out of range"):
        store.lset("l", index, "x")
    assert store.lrange("l", 0, -1) == ["a", "b", "c"]


def test_lset_of_a_missing_key_raises(store: AbsKvStore) -> None:
    with pytest.raises(StoreError, match="no such key"):
        store.lset("l", 0, "x")


def test_ltrim_follows_redis_rules_for_every_start_and_end(store: AbsKvStore) -> None:
    items = ["a", "b", "c", "d", "e"]
    for start in range(-6, 7, 2):
        for end in range(-6, 7, 3):
            store.delete("l")
            store.rpush("l", *items)
            assert store.ltrim("l", start, end) is True
            expected = redis_range(items, start, end)
            assert store.lrange("l", 0, -1) == expected, (start, end)
            assert store.llen("l") == len(expected)
    assert store.ltrim("missing", 0, 1) is True


def test_ltrim_to_nothing_deletes_the_key(store: AbsKvStore) -> None:
    store.rpush("l", 1, 2, 3)
    store.ltrim("l", 2, 1)
    assert store.set("l", "x", nx=True) is True


def test_llen_counts_items(store: AbsKvStore) -> None:
    assert store.llen("l") == 0
    store.rpush("l", *range(7))
    store.lpush("l", -1)
    assert store.llen("l") == 8


# -- wrong types ----------------------------------------------------------------------------
STRING_OPS = [("get", ())]
HASH_OPS = [
    ("hset", ("f", 1)), ("hget", ("f",)), ("hmset", ({"f": 1},)), ("hmget", (["f"],)),
    ("hgetall", ()), ("hsetnx", ("f", 1)), ("hdel", ("f",)), ("hexists", ("f",)),
    ("hkeys", ()), ("hvals", ()), ("hlen", ()),
]
LIST_OPS = [
    ("lpop", ()), ("lpop", (2,)), ("rpop", ()), ("rpop", (0,)), ("lpush", (1,)), ("rpush", (1,)),
    ("lset", (0, 1)), ("lrange", (0, -1)), ("ltrim", (0, -1)), ("llen", ()),
]
WRONG = (
    [(op, args, key) for op, args in STRING_OPS for key in ("h", "l")]
    + [(op, args, key) for op, args in HASH_OPS for key in ("s", "l")]
    + [(op, args, key) for op, args in LIST_OPS for key in ("s", "h")]
)


def test_an_operation_on_a_key_of_another_type_raises_wrong_type(store: AbsKvStore) -> None:
    make_types(store)
    for op, args, key in WRONG:
        with pytest.raises(WrongTypeError, match=f"{op} '(strategy-a:)?{key}': WRONGTYPE"):
            getattr(store, op)(key, *args)
    # and changed nothing
    assert store.get("s") == "v"
    assert store.hgetall("h") == {"f": "v"}
    assert store.lrange("l", 0, -1) == ["v"]


def test_wrong_type_error_is_also_a_type_error(store: AbsKvStore) -> None:
    store.set("s", 1)
    with pytest.raises(TypeError):
        store.llen("s")


# -- data -----------------------------------------------------------------------------------
UNICODE = ["é", "日本語", "🚀 rocket", "a\u0301", "tab\tnew\nline", "nul\x00inside", " "]


def test_unicode_keys_fields_and_values_round_trip(store: AbsKvStore) -> None:
    for i, text in enumerate(UNICODE):
        store.set(text, text)
        store.hset(f"h{i}", text, text)
        store.rpush("l", text)
    assert store.mget(UNICODE) == UNICODE
    assert [store.get(t) for t in UNICODE] == UNICODE
    assert [store.hgetall(f"h{i}") for i in range(len(UNICODE))] == [{t: t} for t in UNICODE]
    assert [store.hmget(f"h{i}", t)[0] for i, t in enumerate(UNICODE)] == UNICODE
    assert store.lrange("l", 0, -1) == UNICODE


def test_empty_key_field_and_value_are_ordinary(store: AbsKvStore) -> None:
    store.set("", "")
    store.hset("h", "", "")
    store.rpush("l", "")
    assert store.get("") == ""
    assert store.hgetall("h") == {"": ""}
    assert store.hexists("h", "") is True
    assert store.lrange("l", 0, -1) == [""]
    assert store.lpop("l") == ""


def test_one_megabyte_values_round_trip(store: AbsKvStore) -> None:
    big = "0123456789abcdef" * (MB // 16)
    big2 = "é" * (MB // 2)
    store.set("big", big)
    store.hset("h", "big", big2)
    store.rpush("l", big, big2)
    assert store.get("big") == big
    assert store.hget("h", "big") == big2
    assert store.lrange("l", 0, -1) == [big, big2]
    assert store.rpop("l") == big2


def test_many_keys_fields_and_items(store: AbsKvStore) -> None:
    n = 3000
    mapping = {f"key:{i}": i for i in range(n)}
    store.mset(mapping)
    assert store.mget(list(mapping)) == [str(i) for i in range(n)]
    store.hset("h", mapping=mapping)
    assert store.hlen("h") == n
    assert store.hgetall("h") == {k: str(v) for k, v in mapping.items()}
    store.rpush("l", *range(n))
    store.lpush("l", *range(-1, -n - 1, -1))
    assert store.llen("l") == 2 * n
    assert store.lrange("l", 0, -1) == [str(i) for i in range(-n, n)]
    assert store.lrange("l", n - 2, n + 1) == ["-2", "-1", "0", "1"]
    assert store.lpop("l", n) == [str(i) for i in range(-n, 0)]
    assert store.delete(*mapping) == n


# -- pipelines ------------------------------------------------------------------------------
def test_pipeline_commands_chain_and_execute_returns_results_in_order(store: AbsKvStore) -> None:
    pipe = store.pipeline()
    assert pipe.set("a", 1).get("a").hset("h", "f", 1).rpush("l", 1, 2).lrange("l", 0, -1) is pipe
    assert len(pipe) == 5
    assert store.get("a") is None  # nothing sent yet
    assert pipe.execute() == [True, "1", 1, 2, ["1", "2"]]
    assert len(pipe) == 0
    assert pipe.execute() == []
    assert pipe.mget("a", "zz").hgetall("h").execute() == [["1", None], {"f": "1"}]


def test_pipeline_returns_every_documented_result_form(store: AbsKvStore) -> None:
    with store.pipeline() as pipe:
        pipe.mset({"a": 1}).setnx("a", 2).set("b", 2, get=True).mget([]).delete("b")
        pipe.hmset("h", {"f": 1}).hsetnx("h", "f", 2).hmget("h", "f").hexists("h", "f")
        pipe.hkeys("h").hvals("h").hlen("h").hdel("h", "f")
        pipe.lpush("l", 1).lset("l", 0, 2).lpop("l", 1).rpop("l").llen("l").ltrim("l", 0, 1)
        results = pipe.execute()
    assert results == [True, False, None, [], 1,
                       True, 0, ["1"], True, ["f"], ["1"], 1, 1,
                       1, True, ["2"], None, 0, True]


def test_a_failing_command_does_not_undo_the_others_and_execute_raises_it(
        store: AbsKvStore) -> None:
    pipe = store.pipeline()
    pipe.set("a", 1).hset("a", "f", 1).set("b", 2)
    with pytest.raises(WrongTypeError, match="hset '(strategy-a:)?a'"):
        pipe.execute()
    assert store.mget("a", "b") == ["1", "2"]


def test_execute_without_raising_returns_errors_in_place(store: AbsKvStore) -> None:
    store.rpush("l", 1)
    pipe = store.pipeline()
    results = pipe.get("l").lset("l", 5, "x").llen("l").execute(raise_on_error=False)
    assert isinstance(results[0], WrongTypeError)
    assert isinstance(results[1], StoreError)
    assert results[2] == 1


def test_pipeline_runs_of_sets_keep_each_result_order_and_last_write(store: AbsKvStore) -> None:
    # on Redis, runs of plain SETs travel as one MSET: replies and effects must not change
    store.rpush("was_a_list", "x")
    results = (
        store.pipeline()
        .set("a", "1").set("b", 2).set("a", "3").set("was_a_list", "now a string")
        .set("b", "never", nx=True).get("a")
        .set("c", "4").hset("h", "f", "v").set("d", "5").set("d", "6")
        .execute()
    )
    assert results == [True, True, True, True, None, "3", True, 1, True, True]
    assert store.mget(["a", "b", "c", "d", "was_a_list"]) == ["3", "2", "4", "6", "now a string"]


def test_pipeline_reads_see_its_earlier_writes(store: AbsKvStore) -> None:
    pipe = store.pipeline()
    pipe.hset("h", "f", 1).hget("h", "f").hset("h", "f", 2).hgetall("h").delete("h").hlen("h")
    assert pipe.execute() == [1, "1", 0, {"f": "2"}, 1, 0]


def test_pipeline_block_executes_on_exit_and_discards_on_error(store: AbsKvStore) -> None:
    with store.pipeline() as pipe:
        pipe.set("kept", 1)
    with pytest.raises(RuntimeError), store.pipeline() as pipe:
        pipe.set("dropped", 1)
        raise RuntimeError("strategy failed")
    assert store.mget("kept", "dropped") == ["1", None]


def test_a_bad_argument_raises_at_the_call_and_queues_nothing(store: AbsKvStore) -> None:
    pipe = store.pipeline()
    pipe.set("a", 1)
    with pytest.raises(StoreError):
        pipe.set("b", None)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        pipe.lpush("l")
    assert len(pipe) == 1
    assert pipe.execute() == [True]


def test_pipeline_discards_with_reset(store: AbsKvStore) -> None:
    pipe = store.pipeline()
    pipe.set("a", 1)
    pipe.reset()
    assert pipe.execute() == []
    assert store.get("a") is None


def test_pipelines_do_not_nest(store: AbsKvStore) -> None:
    with pytest.raises(StoreError, match="pipeline"):
        store.pipeline().pipeline()


# -- lifetime -------------------------------------------------------------------------------
def test_a_closed_store_raises_store_error(store: AbsKvStore) -> None:
    store.set("a", 1)
    store.close()
    with pytest.raises(StoreError):
        store.get("a")
    with pytest.raises(StoreError):
        store.rpush("l", 1)
    with pytest.raises(StoreError):
        store.pipeline().set("a", 2).execute()
    store.close()  # closing twice is harmless


def test_the_store_is_a_context_manager_that_closes(store: AbsKvStore) -> None:
    with store as same:
        same.set("a", 1)
        assert same is store
    with pytest.raises(StoreError):
        store.get("a")
