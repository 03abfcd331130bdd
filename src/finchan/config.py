"""Reading and validating finchan's configuration.

A config is one YAML file, or a directory whose ``*.yml``/``*.yaml`` files (in
it and its subdirectories) are deep-merged: maps key by key, lists joined
without repeats, and two different scalars for one key is an error naming both
files. Files are read in a fixed order (shallower first, then by path) so the
merge is the same on every machine. ``%YAML 1.2`` headers and aliases work
(ruamel.yaml). ``backtest``/``live`` are accepted wherever the original said
``backtrack``/``live_track``, in key names and in ``run_mode``.

Every validation error names the file and the key path, e.g.
``finchan.yml: dispatcher.backtrack.end_dt: not a date (got 'soon')``.

This module imports pydantic and ruamel.yaml; the core imports it only when a
config is actually read, so ``import finchan`` stays light.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from finchan._mode import RunMode as _RunMode
from finchan.errors import ConfigError

__all__ = [
    "BacktrackDispatcherConfig",
    "ExtManagerConfig",
    "FinchanConfig",
    "LiveDispatcherConfig",
    "load_config",
    "normalize_mode",
    "read_config_files",
    "validate_config",
    "validate_ext_options",
]

# key spellings accepted beside the original ones
_KEY_ALIASES = {
    "enabled_backtest_exts": "enabled_backtrack_exts",
    "enabled_live_track_exts": "enabled_live_exts",
    "backtest_exts": "backtrack_exts",
    "live_exts": "live_track_exts",
    "dispatcher.backtest": "dispatcher.backtrack",
    "dispatcher.live": "dispatcher.live_track",
}


def normalize_mode(mode: str) -> _RunMode:
    """The :class:`~finchan.env.RunMode` (equal to ``"backtrack"`` or ``"live_track"``)
    of any accepted spelling of a run mode; ValueError for others."""
    return _RunMode.parse(mode)


# -- field types ----------------------------------------------------------------------
def _parse_when(value: Any) -> datetime | date:
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)  # POSIX seconds, from Python callers
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise PydanticCustomError("not_a_date", "not a date")


def _parse_mode(value: Any) -> _RunMode:
    try:
        return normalize_mode(value)
    except ValueError:
        raise PydanticCustomError(
            "run_mode", "must be backtest (backtrack) or live (live_track)"
        ) from None


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


When = Annotated[datetime | date, BeforeValidator(_parse_when)]
RunMode = Annotated[_RunMode, BeforeValidator(_parse_mode)]
StrList = Annotated[list[str], BeforeValidator(_as_list)]
OnError = Literal["log", "stop"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ExtManagerConfig(_Section):
    """``ext_manager:``: where extensions are looked for."""

    ext_paths: StrList = Field(default_factory=list)
    ext_path: StrList = Field(default_factory=list)  # the original singular key


class BacktrackDispatcherConfig(_Section):
    """``dispatcher.backtrack:``."""

    start_dt: When | None = None
    end_dt: When | None = None
    time_step: float = Field(86400.0, gt=0)
    trace_process_time: bool = False
    on_callback_error: OnError = "stop"


class LiveDispatcherConfig(_Section):
    """``dispatcher.live_track:``."""

    stop_check_interval: float = Field(1.0, gt=0)
    on_callback_error: OnError = "log"


class FinchanConfig(_Section):
    """The whole validated configuration (see the README's configuration reference)."""

    version: Literal[1] = 1
    run_mode: RunMode = _RunMode.BACKTEST
    work_dir: str = "~/.finchan"
    seed: int = Field(0, ge=0)
    timezone: str = "UTC"
    ext_manager: ExtManagerConfig = Field(default_factory=ExtManagerConfig)
    enabled_backtrack_exts: StrList = Field(default_factory=list)
    enabled_live_exts: StrList = Field(default_factory=list)
    ext_groups: dict[str, StrList] = Field(default_factory=dict)
    backtrack_exts: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    live_track_exts: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    dispatcher_backtrack: BacktrackDispatcherConfig = Field(
        default_factory=BacktrackDispatcherConfig, alias="dispatcher.backtrack"
    )
    dispatcher_live_track: LiveDispatcherConfig = Field(
        default_factory=LiveDispatcherConfig, alias="dispatcher.live_track"
    )
    log_config: dict[str, Any] | None = None

    _source: str = PrivateAttr(default="config")
    _config_dir: Path | None = PrivateAttr(default=None)
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)
    _origins: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from finchan._time import get_tz

        try:
            get_tz(value)
        except Exception:
            raise PydanticCustomError("timezone", "unknown time zone") from None
        return value

    @property
    def source(self) -> str:
        """Where the config came from (a path, or ``config`` for a mapping)."""
        return self._source

    @property
    def config_dir(self) -> Path | None:
        """Directory of the config file (or the config directory); relative paths start there."""
        return self._config_dir

    @property
    def raw(self) -> dict[str, Any]:
        """The merged mapping as read (after key aliases, before defaults)."""
        return self._raw

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        """``~`` expanded; a relative path is taken from :attr:`config_dir` (or the cwd)."""
        path = Path(os.path.expanduser(os.fspath(value)))
        if not path.is_absolute() and self._config_dir is not None:
            path = self._config_dir / path
        return path

    def ext_options(self, mode: str) -> dict[str, dict[str, Any] | None]:
        backtest = _RunMode.parse(mode) is _RunMode.BACKTEST
        return self.backtrack_exts if backtest else self.live_track_exts

    def enabled_exts(self, mode: str) -> list[str]:
        backtest = _RunMode.parse(mode) is _RunMode.BACKTEST
        return self.enabled_backtrack_exts if backtest else self.enabled_live_exts


# -- reading ----------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    yaml = YAML(typ="safe", pure=True)
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, not a {type(data).__name__}"
        )
    return data


def _normalize_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Fold key aliases and a nested ``dispatcher:`` map into the original flat keys."""
    result: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        key = str(key)
        if key == "dispatcher" and isinstance(value, dict):
            items.extend((f"dispatcher.{sub}", sub_value) for sub, sub_value in value.items())
        else:
            items.append((key, value))
    for key, value in items:
        _merge(result, {_KEY_ALIASES.get(key, key): value}, origins, source)
    return result


def _record(
    origins: dict[tuple[str, ...], str], path: tuple[str, ...], value: Any, source: str
) -> None:
    origins.setdefault(path, source)
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(origins, (*path, str(key)), sub, source)


def _merge(
    into: dict[str, Any],
    new: Mapping[str, Any],
    origins: dict[tuple[str, ...], str],
    source: str,
    path: tuple[str, ...] = (),
) -> None:
    for key, value in new.items():
        key_path = (*path, str(key))
        if key not in into or into[key] is None:
            into[key] = copy.deepcopy(value)
            _record(origins, key_path, value, source)
            continue
        current = into[key]
        if value is None:
            continue
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value, origins, source, key_path)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(copy.deepcopy(item) for item in value if item not in current)
        elif type(current) is type(value) and current == value:
            continue
        else:
            raise ConfigError(
                f"{'.'.join(key_path)}: conflicting values {current!r} in "
                f"{origins.get(key_path, '?')} and {value!r} in {source}"
            )


def _config_files(directory: Path) -> list[Path]:
    files = [p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()]
    return sorted(files, key=lambda p: (len(p.relative_to(directory).parts), p.as_posix()))


def read_config_files(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[tuple[str, ...], str], Path]:
    """Read and merge a config file or directory.

    Returns the merged mapping, the file each key path came from, and the
    directory relative paths start from.
    """
    root = Path(os.path.expanduser(os.fspath(path)))
    if root.is_dir():
        files = _config_files(root)
        if not files:
            raise ConfigError(f"{root}: no *.yml config files in this directory")
        base = root
    elif root.exists():
        files, base = [root], root.parent
    else:
        raise ConfigError(f"{root}: config file not found")
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for file in files:
        shown = str(file)
        _merge(merged, _normalize_keys(_read_yaml(file), shown), origins, shown)
    return merged, origins, base.resolve()


# -- overrides ------------------------------------------------------------------------------
def _parse_scalar(text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return text


def apply_override(config: dict[str, Any], assignment: str) -> tuple[str, ...]:
    """Apply ``key.path=value`` to a raw config mapping; returns the key path used.

    Keys themselves may contain dots (``dispatcher.backtrack``,
    ``finchan.exts.timer_source``): at each level the longest run of parts
    that names an existing key is taken, else a single part.
    """
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment}: expected KEY.PATH=VALUE")
    dotted, _, text = assignment.partition("=")
    parts = [p for p in dotted.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {assignment}: empty key path")
    node: dict[str, Any] = config
    used: list[str] = []
    while parts:
        for size in range(len(parts), 0, -1):
            candidate = ".".join(parts[:size])
            candidate = _KEY_ALIASES.get(candidate, candidate) if not used else candidate
            if candidate in node or size == 1:
                break
        parts = parts[size:]
        used.append(candidate)
        if not parts:
            node[candidate] = _parse_scalar(text)
        else:
            child = node.get(candidate)
            if child is None:
                child = node[candidate] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {assignment}: {'.'.join(used)} is not a mapping")
            node = child
    return tuple(used)


# -- validation ---------------------------------------------------------------------------
_MESSAGES = {
    "int_parsing": "not an integer",
    "int_type": "not an integer",
    "int_from_float": "not an integer",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "bool_parsing": "not true or false",
    "bool_type": "not true or false",
    "list_type": "not a list",
    "dict_type": "not a mapping",
    "model_type": "not a mapping",
    "model_attributes_type": "not a mapping",
    "string_type": "not a string",
    "missing": "required",
}


def _describe_error(error: Mapping[str, Any], known: Iterable[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key{hint}"
    message = _MESSAGES.get(kind)
    if message is None:
        message = str(error["msg"])
        message = message.replace("Input should be", "must be").replace("Value error, ", "")
        message = message[:1].lower() + message[1:]
    if kind == "missing":
        return message
    shown = repr(error.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{message} (got {shown})"


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: Any = FinchanConfig
    for part in loc[:-1]:
        field = None
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                field = info
                break
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [info.alias or name for name, info in model.model_fields.items()]


def _origin(origins: Mapping[tuple[str, ...], str], loc: tuple[str, ...], default: str) -> str:
    for size in range(len(loc), 0, -1):
        found = origins.get(loc[:size])
        if found:
            return found
    return default


def validate_config(
    data: Mapping[str, Any] | None,
    *,
    origins: Mapping[tuple[str, ...], str] | None = None,
    source: str = "config",
    config_dir: Path | None = None,
) -> FinchanConfig:
    """Validate a config mapping (as read from YAML) into a :class:`FinchanConfig`.

    Raises :class:`~finchan.errors.ConfigError` whose message names the file
    and key path of the first problem, and how many more there are.
    """
    raw = _normalize_keys(dict(data or {}), source)
    origins = dict(origins or {})
    try:
        config = FinchanConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        lines = []
        for error in errors:
            loc = tuple(str(p) for p in error["loc"])
            where = _origin(origins, loc, source)
            lines.append(f"{where}: {'.'.join(loc)}: {_describe_error(error, _fields_at(loc))}")
        more = f" (and {len(lines) - 1} more problem(s))" if len(lines) > 1 else ""
        raise ConfigError(lines[0] + more) from None
    config._source = source
    config._config_dir = config_dir
    config._raw = raw
    config._origins = origins
    return config


def validate_ext_options(env: Any, ext_name: str, model: type[BaseModel],
                         options: Mapping[str, Any] | None = None) -> Any:
    """Validate an extension's options with a pydantic ``model``.

    Errors name the config file and the full key path, like the core's:
    ``finchan.yml: backtrack_exts.finchan.exts.sim_broker.cash: not a number (got 'lots')``.
    """
    if options is None:
        options = env.get_ext_options(ext_name)
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        config = env.config
        backtest = _RunMode.parse(env.run_mode) is _RunMode.BACKTEST
        section = "backtrack_exts" if backtest else "live_track_exts"
        known = [info.alias or name for name, info in model.model_fields.items()]
        lines = []
        for error in exc.errors():
            loc = (section, ext_name, *(str(p) for p in error["loc"]))
            where = _origin(config._origins, loc, config.source)
            fields = known if len(error["loc"]) == 1 else []
            lines.append(f"{where}: {'.'.join(loc)}: {_describe_error(error, fields)}")
        more = f" (and {len(lines) - 1} more problem(s))" if len(lines) > 1 else ""
        raise ConfigError(lines[0] + more) from None


def load_config(
    path: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    run_mode: str | None = None,
) -> FinchanConfig:
    """Read, merge, override and validate the config at ``path`` (a file or a directory).

    ``overrides`` are ``key.path=value`` strings (the CLI's ``--set``);
    ``run_mode`` overrides ``run_mode`` (the CLI's ``--mode``).
    """
    raw, origins, config_dir = read_config_files(path)
    for assignment in overrides:
        key_path = apply_override(raw, assignment)
        for size in range(1, len(key_path) + 1):
            origins[key_path[:size]] = "--set"
    if run_mode is not None:
        raw["run_mode"] = run_mode
        origins[("run_mode",)] = "--mode"
    return validate_config(raw, origins=origins, source=str(path), config_dir=config_dir)
