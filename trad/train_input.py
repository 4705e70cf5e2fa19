"""`trad train`'s input: flags and a --file turned into a job request body, and pydantic's
verdict on it turned into one line that names every bad field (and its flag)."""

from __future__ import annotations

import json
from typing import IO, Any, TypeVar

import click
import pydantic

from trad.errors import TradError

Model = TypeVar("Model", bound=pydantic.BaseModel)

TRAIN_FLAGS = {"strategy": "--strategy", "symbol": "--symbol", "timeframe": "--timeframe", "optimizer": "--optimizer",
               "n_iterations": "--iterations", "objective": "--objective", "n_jobs": "--n-jobs", "seed": "--seed",
               "job_name": "--name"}


def param_override(text: str) -> tuple[str, object]:
    """NAME=VALUE, NAME=LOW:HIGH[:STEP] or NAME=A,B,C → one param_space entry."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise click.BadParameter(f"{text!r}: use NAME=VALUE, NAME=LOW:HIGH[:STEP] or NAME=A,B,C")

    def number(part: str) -> float | int | str:
        try:
            return int(part)
        except ValueError:
            try:
                return float(part)
            except ValueError:
                return part

    if ":" in value:
        parts = [number(p) for p in value.split(":")]
        if len(parts) not in (2, 3):
            raise click.BadParameter(f"{text!r}: a range is LOW:HIGH or LOW:HIGH:STEP")
        return name, dict(zip(("low", "high", "step"), parts))
    if "," in value:
        return name, {"choices": [number(p) for p in value.split(",")]}
    return name, number(value)


def job_file(handle: IO[str]) -> dict[str, Any]:
    """The JSON object in a --file; any defect is one line (BadParameter), never a traceback."""
    try:
        text = handle.read()
    except UnicodeDecodeError:
        raise click.BadParameter("not UTF-8 text", param_hint="--file") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--file") from None
    except RecursionError:
        raise click.BadParameter("JSON nested too deeply to be a job request", param_hint="--file") from None
    if not isinstance(body, dict):
        raise click.BadParameter(f"a job request is a JSON object, not {type(body).__name__}", param_hint="--file")
    return body


def validated(model: type[Model], body: dict[str, Any]) -> Model:
    """`body` as a `model` request, or a usage error naming every bad field (and its flag)."""
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise click.UsageError(request_errors(exc)) from None


def request_errors(exc: pydantic.ValidationError) -> str:
    """Every field pydantic refused, in one line: `field (--flag): issue; …`.

    A value that may take several shapes (a `--param` override: a number, a range, choices) is
    judged by the shape it fits best: of the shapes it has the type of, the one with fewest issues."""
    plain: list[tuple[str, str]] = []
    shapes: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        message = "missing" if error["type"] == "missing" else error["msg"]
        tag = next((i for i, part in enumerate(loc) if _union_member(part)), None)
        if tag is None:
            plain.append((".".join(loc) or "request", message))
            continue
        issues = shapes.setdefault(".".join(loc[:tag]), {}).setdefault(loc[tag], [])
        wrong_type = len(loc) == tag + 1 and error["type"].endswith(("_type", "_parsing"))
        issues.append((".".join(loc[:tag] + loc[tag + 1:]), "" if wrong_type else message))
    for field, members in shapes.items():
        fitting = [issues for issues in members.values() if all(message for _, message in issues)]
        plain += min(fitting, key=len) if fitting else [(field, "not a value, range or choices it can take")]
    return TradError.describe([{"field": f"{where} ({TRAIN_FLAGS[where]})" if where in TRAIN_FLAGS else where,
                                "issue": message} for where, message in plain])


def _union_member(part: str) -> bool:
    """pydantic names the member of a union in an error's location: a class, a validator or a type."""
    return part[:1].isupper() or "[" in part or part in ("int", "float", "str", "bool")
