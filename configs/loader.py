"""Read engagement files, reporting every problem at once as `file: field.path: reason`.

A file is refused before it is parsed when it is over MAX_FILE_BYTES, and before it is composed
into Python objects when it nests deeper than MAX_DEPTH (PyYAML composes recursively and would
end in a RecursionError) or its aliases expand to more than MAX_VALUES values (a few hundred
bytes of anchors can stand for a billion). Real engagement files are a few kilobytes deep in
single digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from phasegate.configs import checks, file_errors
from phasegate.configs.errors import ConfigError
from phasegate.configs.schema import Engagement

ENGAGEMENTS_DIR = Path(__file__).parent / "engagements"
MAX_FILE_BYTES = 2**20
MAX_DEPTH = 50
MAX_VALUES = 100_000
# libyaml's parser when PyYAML was built with it (the wheels are): about ten times the pure-Python one's speed
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _where(mark: Any) -> str:
    """` at line L, column C` for a PyYAML mark (pure-Python or libyaml), or nothing."""
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def check_shape(text: str, source: str) -> None:
    """Walk the YAML events (PyYAML's parser is iterative) and refuse deep nesting and alias
    bombs before anything is built. Each open collection counts the values inside it; an anchor
    remembers its count so that every alias to it adds that many."""
    anchored: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = [(None, 0)]

    def add(count: int, event: yaml.Event) -> None:
        anchor, inside = stack[-1]
        stack[-1] = (anchor, inside + count)
        if inside + count > MAX_VALUES:
            raise ConfigError([f"{source}: the file expands to more than {MAX_VALUES} values"
                               f"{_where(event.start_mark)} (through its aliases)"])

    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, _OPENS):
            if len(stack) > MAX_DEPTH:
                raise ConfigError([f"{source}: nested more than {MAX_DEPTH} levels deep{_where(event.start_mark)}"])
            stack.append((event.anchor, 0))
        elif isinstance(event, _CLOSES):
            anchor, inside = stack.pop()
            if anchor is not None:
                anchored[anchor] = inside + 1
            add(inside + 1, event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchored[event.anchor] = 1
            add(1, event)
        elif isinstance(event, yaml.AliasEvent):
            add(anchored.get(event.anchor or "", 1), event)


def parse_engagement(text: str, source: str) -> Engagement:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: no file holds one, and libyaml reads UTF-8 only
        raise ConfigError([f"{source}: invalid YAML: unacceptable character #x{ord(text[exc.start]):04x}"]) from None
    if size > MAX_FILE_BYTES:
        raise ConfigError([f"{source}: the file is {size} bytes; an engagement file may have at most "
                           f"{MAX_FILE_BYTES} bytes"])
    try:
        check_shape(text, source)
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader, libyaml's when present)
    except yaml.YAMLError as exc:
        where = _where(getattr(exc, "problem_mark", None))
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}: invalid YAML{where}: {reason}"]) from None
    if data is None:
        raise ConfigError([f"{source}: the file is empty"])
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping of engagement fields, got {type(data).__name__}"])
    try:
        return Engagement.model_validate(data)
    except ValidationError as exc:
        # cross-field problems are reported from the raw document, with exact paths
        found = file_errors.problems(exc.errors(), checks.CROSS_MARK)
        reported = {path for path, _ in found}
        found += [(path, file_errors.with_hint(reason)) for path, reason in checks.engagement_problems(data)
                  if path not in reported]
        problems = [f"{source}: {path}: {reason}" for path, reason in found]
        raise ConfigError(problems) from None


def load_engagement(path: Path) -> Engagement:
    """The file's engagement; its size is checked before a byte of it is read."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError([f"{path}: the file is {size} bytes; an engagement file may have at most "
                               f"{MAX_FILE_BYTES} bytes"])
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # a pipe or device has no size to check first
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError([f"{path}: the file is over {MAX_FILE_BYTES} bytes, the most an engagement file "
                               "may have"])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    return parse_engagement(text, str(path))


def engagement_files(directory: Path = ENGAGEMENTS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))
