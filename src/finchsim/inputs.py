"""Loading the harness's own declarative files (`apiVersion: finchsim/v1`) into strict models.

Every problem in a file is reported at once, each with its location, e.g.
`analysis/targets.yaml: targets[2].threshold: Input should be greater than 0`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from finchsim.errors import InputError, Problem

API_VERSION = "finchsim/v1"


class Strict(BaseModel):
    """Base of every input model: unknown fields are errors and loaded values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Document(Strict):
    """Base of a top-level input file: it names its schema like a Kubernetes object does."""

    apiVersion: Literal["finchsim/v1"]
    kind: str


DocT = TypeVar("DocT", bound=Document)


def read_yaml(path: Path, shown_as: str) -> Any:
    """Parse one YAML document, turning parse errors into an InputError naming the line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError([Problem(shown_as, "", f"cannot read: {exc.strerror}")]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError([Problem(shown_as, where, f"invalid YAML: {problem}")]) from exc


def load_document(path: Path, model: type[DocT], shown_as: str | None = None) -> DocT:
    """Load `path` into `model`, raising one InputError that lists every problem."""
    shown = shown_as or str(path)
    data = read_yaml(path, shown)
    if not isinstance(data, dict):
        raise InputError([Problem(shown, "", "expected a mapping with apiVersion and kind")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(problems_from(exc, shown)) from exc


def problems_from(exc: ValidationError, shown_as: str) -> list[Problem]:
    """One Problem per pydantic error, with a `a.b[2].c` style field path."""
    problems = []
    for err in exc.errors():
        field = ""
        for part in err["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        problems.append(Problem(shown_as, field, _message(err)))
    return problems


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    if err["type"] == "literal_error":
        return f"expected {err['ctx']['expected']}, got {err['input']!r}"
    return str(err["msg"])
