"""Search spaces: ``--grid name=5,10,20`` / ``name=20:60:10``, checked against a strategy."""

from __future__ import annotations

import difflib
import itertools
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from finchan.errors import ConfigError

__all__ = ["Space", "params_key", "parse_grid_arg", "parse_value_list"]


def params_key(params: Mapping[str, Any]) -> str:
    """The canonical text of one combination: sorted-key JSON (the store's key)."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


def _scalar(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _range(name: str, text: str) -> list[Any]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise ConfigError(
            f"--grid {name}={text}: a range is START:STOP[:STEP] (STOP included), e.g. 20:60:10"
        )
    values = [_scalar(p) for p in parts]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"--grid {name}={text}: a range needs numbers")
    start, stop = values[0], values[1]
    step = values[2] if len(values) == 3 else 1
    if step <= 0:
        raise ConfigError(f"--grid {name}={text}: the step must be positive")
    if stop < start:
        raise ConfigError(f"--grid {name}={text}: STOP {stop} is below START {start}")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return list(range(start, stop + 1, step))
    count = int((stop - start) / step + 1e-9) + 1
    return [round(start + i * step, 12) for i in range(count)]


def parse_value_list(name: str, text: str) -> list[Any]:
    """Values of one ``--grid`` argument: ``a,b,c`` or ``START:STOP[:STEP]`` (STOP included)."""
    text = text.strip()
    if not text:
        raise ConfigError(f"--grid {name}=: no values (give e.g. {name}=5,10,20 or {name}=5:20:5)")
    if ":" in text and "," not in text:
        return _range(name, text)
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"--grid {name}={text}: an empty value between commas")
    return [_scalar(item) for item in items]


def parse_grid_arg(arg: str) -> tuple[str, list[Any]]:
    """``"fast=5,10,20"`` -> ``("fast", [5, 10, 20])``; bad syntax raises ConfigError."""
    name, sep, text = arg.partition("=")
    name = name.strip()
    if not sep or not name or not name.isidentifier():
        raise ConfigError(
            f"--grid {arg!r}: expected NAME=VALUES, e.g. fast=5,10,20 or slow=20:60:10"
        )
    return name, parse_value_list(name, text)


class Space:
    """The combinations a sweep may run: parameter names and their candidate values.

    Every value is checked against the strategy's declared parameters (the
    name must exist, the type must match the default's) before anything runs.
    """

    def __init__(
        self,
        strategy_class: Any,
        grid: Mapping[str, Sequence[Any] | str],
        base_params: Mapping[str, Any] | None = None,
    ) -> None:
        if not grid:
            raise ConfigError("empty grid: give at least one parameter, e.g. --grid fast=5,10,20")
        declared = dict(strategy_class.params)
        self.names: list[str] = []
        self.values: dict[str, list[Any]] = {}
        for name, raw in grid.items():
            if name not in declared:
                close = difflib.get_close_matches(name, list(declared), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = ", ".join(declared) or "none"
                raise ConfigError(
                    f"grid: {strategy_class.__name__} has no parameter {name!r}{hint} "
                    f"(known: {known})"
                )
            values = parse_value_list(name, raw) if isinstance(raw, str) else list(raw)
            if not values:
                raise ConfigError(f"grid: {name}: no values")
            checked = []
            for value in values:
                # the strategy's own check of the type against the default's
                try:
                    params = strategy_class.resolve_params({name: value})
                except ConfigError as exc:
                    raise ConfigError(f"grid: {exc}") from None
                checked.append(params[name])
            if len(set(map(repr, checked))) != len(checked):
                raise ConfigError(f"grid: {name}: a value is repeated in {values!r}")
            self.names.append(name)
            self.values[name] = checked
        self.base = dict(base_params or {})
        strategy_class.resolve_params(self.base)

    @property
    def size(self) -> int:
        size = 1
        for name in self.names:
            size *= len(self.values[name])
        return size

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination, in grid order (the last parameter varies fastest)."""
        for combo in itertools.product(*(self.values[n] for n in self.names)):
            yield dict(zip(self.names, combo))

    def sample(self, count: int, seed: int) -> list[dict[str, Any]]:
        """``count`` distinct combinations drawn uniformly with ``random.Random(seed)``."""
        size = self.size
        picks = random.Random(seed).sample(range(size), min(count, size))
        out = []
        for flat in picks:
            combo = {}
            for name in reversed(self.names):
                values = self.values[name]
                flat, i = divmod(flat, len(values))
                combo[name] = values[i]
            out.append({n: combo[n] for n in self.names})
        return out

    def full_params(self, combo: Mapping[str, Any]) -> dict[str, Any]:
        """The base parameters overridden by one combination."""
        return {**self.base, **combo}
