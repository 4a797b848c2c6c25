"""Pydantic's validation errors as lines a person writing an engagement file can act on.

A newcomer's first file fails on a typo'd key, a date in their own format or a Slack id they do not
know how to find; pydantic says "extra inputs are not permitted" and "input should be a valid date"
and, for a value that may take several types, says it once per type. Here each problem is said
once, with what to write instead.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from phasegate.configs.schema import Engagement

SLACK_USER_HINT = ("to find a user id in Slack: open the person's profile, ⋮ (More) → Copy member ID; "
                   "in the sandbox any id of this form will do")
SLACK_CHANNEL_HINT = ("to find a channel id in Slack: click the channel's name, the id is at the bottom of "
                      "the About tab")
DATE_HINT = "must be a date written YYYY-MM-DD, such as 2026-08-03"

Loc = tuple[int | str, ...]


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if typing.get_origin(annotation) in (typing.Annotated,):
        yield from _models(typing.get_args(annotation)[0])
        return
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def field_path(loc: Loc) -> tuple[Loc, type[BaseModel] | None]:
    """The part of `loc` that names fields (pydantic adds the member types of a union after them),
    and the model the last of them holds."""
    model: type[BaseModel] | None = Engagement
    path: list[int | str] = []
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            continue
        if model is None or part not in model.model_fields:
            break
        path.append(part)
        model = next(_models(model.model_fields[part].annotation), None)
    return tuple(path), model


def location(loc: Loc) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def _suggestion(key: str, model: type[BaseModel] | None) -> str | None:
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    close += [name for name in known if len(key) >= 4 and key.lower() in name and name not in close]
    return close[0] if close else None


def _unknown_key(key: str, model: type[BaseModel] | None) -> str:
    suggestion = _suggestion(key, model)
    known = list(model.model_fields) if model is not None else []
    if suggestion:
        return f"unknown key; did you mean `{suggestion}`?"
    return f"unknown key (known here: {', '.join(known)})" if known else "unknown key"


def _misspelt(errors: list[ErrorDetails]) -> set[Loc]:
    """The fields an unknown key was probably meant to be: their `missing` error is the same typo."""
    meant: set[Loc] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            path, model = field_path(error["loc"])
            suggestion = _suggestion(str(error["loc"][-1]), model)
            if suggestion:
                meant.add((*path, suggestion))
    return meant


def with_hint(message: str) -> str:
    """The message, with where to find the Slack id it asks for."""
    if "Slack user id" in message:
        return f"{message} ({SLACK_USER_HINT})"
    if "Slack channel id" in message:
        return f"{message} ({SLACK_CHANNEL_HINT})"
    return message


def problems(errors: list[ErrorDetails], mark: str) -> list[tuple[str, str]]:
    """`(location, message)` once per field: a value refused by every member of a union, or a
    mapping refused after one of its values, is one problem. Errors whose message starts with
    `mark` are left out (the loader reports those from the raw document)."""
    said: list[Loc] = []
    found: list[tuple[str, str]] = []
    misspelt = _misspelt(errors)
    for error in errors:
        message = error["msg"].removeprefix("Value error, ")
        if message.startswith(mark) or (error["type"] == "missing" and error["loc"] in misspelt):
            continue
        path, model = field_path(error["loc"])
        if error["type"] == "extra_forbidden":
            key = error["loc"][len(path)] if len(error["loc"]) > len(path) else ""
            message, path = _unknown_key(str(key), model), error["loc"]
        elif error["type"].startswith("date_"):
            message = DATE_HINT
        if any(seen and path[:len(seen)] == seen for seen in said):
            continue  # a knock-on of a problem already reported at or above this field
        said.append(path)
        found.append((location(path), with_hint(message)))
    return found

