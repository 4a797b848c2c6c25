"""Read engagement files, reporting every problem at once as `file: field.path: reason`."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from configs import checks
from configs.errors import ConfigError
from configs.schema import Engagement

ENGAGEMENTS_DIR = Path(__file__).parent / "engagements"


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def parse_engagement(text: str, source: str) -> Engagement:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}: invalid YAML{where}: {reason}"]) from None
    if data is None:
        raise ConfigError([f"{source}: the file is empty"])
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping of engagement fields, got {type(data).__name__}"])
    try:
        return Engagement.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if message.startswith(checks.CROSS_MARK):
                continue  # reported below from the raw document, with exact paths
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{source}: {_location(error['loc'])}: {message}")
        problems += [f"{source}: {path}: {reason}" for path, reason in checks.engagement_problems(data)]
        raise ConfigError(problems) from None


def load_engagement(path: Path) -> Engagement:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    return parse_engagement(text, str(path))


def engagement_files(directory: Path = ENGAGEMENTS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))
