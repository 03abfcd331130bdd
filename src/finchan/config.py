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

Size: reading (files, merge, limits), the schema (pydantic models of every
core section) and the error wording are kept together because an error
message needs all three: the origin of a key (which file), its place in the
schema and the user's spelling of it.
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
    model_validator,
)
from pydantic_core import PydanticCustomError

from finchan._mode import RunMode as _RunMode
from finchan.errors import ConfigError

__all__ = [
    "BacktrackDispatcherConfig",
    "ExtManagerConfig",
    "FinchanConfig",
    "KvStoreOptions",
    "LiveDispatcherConfig",
    "TimerCallbackOptions",
    "TimerSourceOptions",
    "check_ext_option_names",
    "ext_option_error",
    "known_ext_names",
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

    @field_validator("time_step")
    @classmethod
    def _step_advances(cls, value: float) -> float:
        # POSIX seconds of today are ~1.7e9, where a double's spacing is ~2.4e-7 s:
        # a step below that cannot move the clock (the run would never end)
        if value < MIN_TIME_STEP:
            raise PydanticCustomError(
                "time_step",
                "must be at least {minimum} seconds (a smaller step cannot advance the clock)",
                {"minimum": MIN_TIME_STEP},
            )
        return value


class LiveDispatcherConfig(_Section):
    """``dispatcher.live_track:``."""

    stop_check_interval: float = Field(1.0, gt=0)
    on_callback_error: OnError = "log"


# -- options of the core's built-in extensions (validated by validate_ext_options) -------
class TimerSourceOptions(_Section):
    """``finchan.exts.timer_source``."""

    seed: int | None = Field(None, ge=0)
    frequency: float = Field(1.0, gt=0)


class TimerCallbackOptions(_Section):
    """``finchan.exts.timer_callback``."""

    step: int = Field(3, gt=0)
    max_step: int | None = Field(None, gt=0)
    unit: Literal["seconds", "minutes", "hours", "days", "weeks", "months", "years"] | None = None
    process_time: float = Field(0.0, ge=0)


class KvStoreOptions(_Section):
    """``finchan.exts.kvstore``."""

    url: str | None = Field(None, min_length=1)
    prefix: str = ""


#: smallest ``dispatcher.backtrack.time_step`` (seconds)
MIN_TIME_STEP = 0.001
#: most windows a backtest with both ends given may have (``(end - start) / time_step``)
MAX_WINDOWS = 10**9


def _as_datetime(value: datetime | date, tz_name: str) -> datetime:
    from finchan._time import get_tz

    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=get_tz(tz_name))
    return value


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

    @model_validator(mode="after")
    def _span_runs(self) -> FinchanConfig:
        opts = self.dispatcher_backtrack
        if opts.start_dt is None or opts.end_dt is None:
            return self
        start = _as_datetime(opts.start_dt, self.timezone)
        end = _as_datetime(opts.end_dt, self.timezone)
        if end < start:
            raise PydanticCustomError(
                "span",
                "dispatcher.backtrack.end_dt: {end} is before start_dt {start}",
                {"end": str(opts.end_dt), "start": str(opts.start_dt)},
            )
        windows = (end - start).total_seconds() / opts.time_step
        if windows > MAX_WINDOWS:
            raise PydanticCustomError(
                "span",
                "dispatcher.backtrack.time_step: {step} s cuts {start} to {end} into "
                "{windows} windows (at most {most}): use a larger time_step",
                {"step": opts.time_step, "start": str(opts.start_dt), "end": str(opts.end_dt),
                 "windows": f"{windows:.3g}", "most": f"{MAX_WINDOWS:.0e}"},
            )
        return self

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
#: largest config file read (bytes): a config is a few KB; this keeps ``-c /dev/zero``
#: or a mistaken data file from filling memory
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: deepest nesting of maps/lists, and most nodes after alias expansion, a config may have
MAX_CONFIG_DEPTH = 64
MAX_CONFIG_NODES = 200_000


def _read_text(path: Path) -> str:
    import stat

    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path}: not a regular file (a config is a YAML file or directory)")
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB: not a config file"
        )
    if b"\0" in data:
        raise ConfigError(f"{path}: binary content (NUL bytes): not a YAML config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _looks_like_toml(text: str) -> bool:
    import re

    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # a first statement like [section] or key = value is TOML (or INI), not YAML
        return bool(re.fullmatch(r"\[\[?[\w.\- \"']+\]\]?|[\w.\-\"']+\s*=.*", line))
    return False


def _check_size(data: Any, path: Path) -> None:
    """Refuse configs nested too deep or that expand (through aliases) to too many nodes."""
    budget = MAX_CONFIG_NODES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"{path}: config too large after expanding aliases "
                f"(more than {MAX_CONFIG_NODES} values): an alias bomb?"
            )
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{path}: config nested deeper than {MAX_CONFIG_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _read_yaml(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    suffix = path.suffix.lower()
    if suffix == ".toml":
        raise ConfigError(f"{path}: a TOML file: finchan configs are YAML (.yml)")
    text = _read_text(path)
    if suffix == ".json":
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise ConfigError(f"{path}: config nested too deeply") from None
    else:
        yaml = YAML(typ="safe", pure=True)
        toml = " (this looks like TOML: finchan configs are YAML)" if _looks_like_toml(text) else ""
        try:
            data = yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            problem = exc.problem or exc.context or "invalid YAML"
            if toml:
                raise ConfigError(f"{path}: not YAML{toml[:-1]}, key: value)") from None
            raise ConfigError(f"{where}: invalid YAML: {problem}") from None
        except YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}{toml}") from None
        except RecursionError:
            raise ConfigError(f"{path}: config nested too deeply") from None
        if toml and isinstance(data, str):
            raise ConfigError(f"{path}: a TOML file? finchan configs are YAML (.yml)")
    if data is None:
        return {}
    _check_size(data, path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, not a {type(data).__name__}"
        )
    return data


class _Origins(dict[tuple[str, ...], str]):
    """The file each key path came from, and how the user spelled the top-level keys."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: canonical top-level key -> the spelling in the user's file (``backtest_exts``)
        self.spelling: dict[str, str] = dict(getattr(args[0], "spelling", {})) if args else {}


def _spelled(loc: Iterable[str], spelling: Mapping[str, str] | None) -> str:
    """A key path as the user wrote it: ``backtest_exts.x`` when the file says ``backtest_exts``."""
    parts = list(loc)
    if parts and spelling and parts[0] in spelling:
        parts[0] = spelling[parts[0]]
    return ".".join(parts)


def _normalize_keys(
    data: dict[str, Any], source: str, spelling: dict[str, str] | None = None
) -> dict[str, Any]:
    """Fold key aliases and a nested ``dispatcher:`` map into the original flat keys."""
    result: dict[str, Any] = {}
    origins = _Origins()
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        key = str(key)
        if key == "dispatcher" and isinstance(value, dict):
            items.extend((f"dispatcher.{sub}", sub_value) for sub, sub_value in value.items())
        else:
            items.append((key, value))
    for key, value in items:
        canonical = _KEY_ALIASES.get(key, key)
        if spelling is not None and (canonical != key or canonical in _KEY_ALIASES.values()):
            spelling.setdefault(canonical, key)  # the first file's spelling is the one shown
        _merge(result, {canonical: value}, origins, source)
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
                f"{_spelled(key_path, getattr(origins, 'spelling', None))}: "
                f"conflicting values {current!r} in "
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
    origins = _Origins()
    for file in files:
        shown = str(file)
        _merge(merged, _normalize_keys(_read_yaml(file), shown, origins.spelling), origins, shown)
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
        in_exts = used in (["backtrack_exts"], ["live_track_exts"])
        for size in range(len(parts), 0, -1):
            candidate = ".".join(parts[:size])
            candidate = _KEY_ALIASES.get(candidate, candidate) if not used else candidate
            if candidate in node or size == 1:
                break
            # an extension's options not in the file yet: its dotted name is one key
            if in_exts and _is_ext_name(candidate, config):
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


def _is_ext_name(name: str, raw: Mapping[str, Any]) -> bool:
    listed: list[Any] = []
    for key in ("enabled_backtrack_exts", "enabled_live_exts"):
        value = raw.get(key)
        listed += [value] if isinstance(value, str) else list(value or [])
    for members in (raw.get("ext_groups") or {}).values():
        listed += [members] if isinstance(members, str) else list(members or [])
    return name in listed or name in known_ext_names() or _importable(name)


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
    from finchan._secrets import mask_secrets

    return mask_secrets(_describe(error, known))


def _describe(error: Mapping[str, Any], known: Iterable[str]) -> str:
    kind = error["type"]
    if kind == "span":
        return str(error["msg"])
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        known = list(known)
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            return f"unknown key (did you mean {close[0]!r}?)"
        return f"unknown key (known: {', '.join(known)})" if known else "unknown key"
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
    origins = _Origins(origins or {})
    raw = _normalize_keys(dict(data or {}), source, origins.spelling)
    try:
        config = FinchanConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        lines = []
        for error in errors:
            loc = tuple(str(p) for p in error["loc"])
            if error["type"] == "span":  # a whole-config check: the message names its keys
                section = _spelled(("dispatcher.backtrack",), origins.spelling)
                where = _origin(origins, ("dispatcher.backtrack", "end_dt"), source)
                message = str(error["msg"]).replace("dispatcher.backtrack", section, 1)
                lines.append(f"{where}: {message}")
                continue
            where = _origin(origins, loc, source)
            lines.append(
                f"{where}: {_spelled(loc, origins.spelling)}: "
                f"{_describe_error(error, _fields_at(loc))}"
            )
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
        spelling = getattr(config._origins, "spelling", None)
        lines = []
        for error in exc.errors():
            loc = (section, ext_name, *(str(p) for p in error["loc"]))
            where = _origin(config._origins, loc, config.source)
            fields = _model_fields_at(model, tuple(str(p) for p in error["loc"]))
            lines.append(f"{where}: {_spelled(loc, spelling)}: {_describe_error(error, fields)}")
        more = f" (and {len(lines) - 1} more problem(s))" if len(lines) > 1 else ""
        raise ConfigError(lines[0] + more) from None


def ext_option_error(env: Any, ext_name: str, message: str) -> ConfigError:
    """A :class:`ConfigError` about an extension's options that names the config file.

    ``message`` may start with the option's key (``files: not found``); the
    result reads ``finchan.yml: backtest_exts.finchan.exts.bars.files: not found``.
    """
    config = env.config
    section = "backtrack_exts" if env.run_mode == "backtrack" else "live_track_exts"
    prefix = f"{ext_name}: "
    if message.startswith(prefix):
        message = message[len(prefix):]
    loc: tuple[str, ...] = (section, ext_name)
    key, sep, rest = message.partition(": ")
    # the options the extension was given (set_ext_options too, as backtest() does)
    getter = getattr(env, "get_ext_options", None)
    options = getter(ext_name) if getter else config.ext_options(env.run_mode).get(ext_name) or {}
    if sep and key.split(".")[0] in options:
        loc, message = (*loc, key), rest
    where = _origin(config._origins, loc, config.source)
    spelling = getattr(config._origins, "spelling", None)
    return ConfigError(f"{where}: {_spelled(loc, spelling)}: {message}")


def _model_fields_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The keys a nested pydantic model accepts at ``loc`` (for "did you mean")."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if current is None:
            return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _importable(name: str) -> bool:
    import importlib.util
    from importlib.metadata import entry_points

    try:
        if importlib.util.find_spec(name) is not None:
            return True
    except (ImportError, ValueError):
        pass
    return any(ep.name == name for ep in entry_points(group="finchan.exts"))


def known_ext_names(config: FinchanConfig | None = None) -> list[str]:
    """Extension names finchan knows without importing anything new.

    The built-in extensions, those named in the config (enabled lists and
    groups) and the installed entry points.
    """
    from importlib.metadata import entry_points

    names = [
        "finchan.exts.bars",
        "finchan.exts.kvstore",
        "finchan.exts.sim_broker",
        "finchan.exts.strategy",
        "finchan.exts.timer_callback",
        "finchan.exts.timer_source",
    ]
    if config is not None:
        names += config.enabled_backtrack_exts + config.enabled_live_exts
        for members in config.ext_groups.values():
            names += members
    names += [ep.name for ep in entry_points(group="finchan.exts")]
    return list(dict.fromkeys(names))


def check_ext_option_names(env: Any) -> None:
    """Refuse options given for an extension that does not exist; warn for one not loaded.

    Run once the extensions are loaded (``Env.run``): options under
    ``backtrack_exts``/``live_track_exts`` for a name that is neither loaded
    nor importable would otherwise be silently ignored (a typo like
    ``sim_brokr`` means a run without commission). Options for an importable
    extension that is not enabled give a warning; the other mode's section is
    not checked (a config may serve both modes).
    """
    import logging

    config: FinchanConfig = env.config
    loaded = set(env.ext_manager.loaded)
    section = "backtrack_exts" if env.run_mode == "backtrack" else "live_track_exts"
    spelling = getattr(config._origins, "spelling", None)
    for name in config.ext_options(env.run_mode):
        if name in loaded:
            continue
        loc = (section, name)
        where = _origin(config._origins, loc, config.source)
        if _importable(name):
            logging.getLogger("finchan.config").warning(
                "%s: %s: options for extension %r, which is not enabled: they are not used",
                where, _spelled(loc, spelling), name,
            )
            continue
        known = list(dict.fromkeys([*env.ext_manager.loaded, *known_ext_names(config)]))
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{where}: {_spelled(loc, spelling)}: options for an unknown extension "
            f"{name!r}: not loaded and not importable{hint}"
        )


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
        for alias, canonical in _KEY_ALIASES.items():
            if canonical == key_path[0] and assignment.startswith(alias + "."):
                origins.spelling.setdefault(canonical, alias)  # type: ignore[attr-defined]
        for size in range(1, len(key_path) + 1):
            origins[key_path[:size]] = "--set"
    if run_mode is not None:
        raw["run_mode"] = run_mode
        origins[("run_mode",)] = "--mode"
    return validate_config(raw, origins=origins, source=str(path), config_dir=config_dir)
