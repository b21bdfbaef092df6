"""Validation of documents (already parsed) into resources, with messages made for people.

A document knows where it came from (source, line, its YAML node), so every problem is
reported with file and line, the field's path, and "did you mean" for a misspelled field.
Data that never was text (an API body, a resource built in code) goes through `from_data`,
the same validation without line numbers.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .api import REGISTRY, Resource, kind_from_name, parse_resource

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ManifestIssue:
    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(ValueError):
    """One or more manifest documents are invalid; `issues` lists every problem found."""

    def __init__(self, issues: Iterable[ManifestIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass
class Document:
    data: Any
    node: Node | None  # None when the line numbers are unknown
    prefix: Loc  # where the document sits in the text: () or ("items", 2) or (2,)
    line: int | None


def from_data(data: Any, source: str = "request", relative_to: Loc = ()) -> Resource:
    """One document given as data, validated exactly as a manifest; ManifestError if invalid.

    With `relative_to` (e.g. `("spec",)` when a request's body is the spec), paths under it
    are reported relative to it, as the person who wrote that body knows them."""
    resource, issues = validate(Document(data, None, (), None), source)
    if issues:
        prefix = format_path(relative_to)
        raise ManifestError(
            ManifestIssue(i.source, i.line, i.path.removeprefix(prefix + ".") if prefix else i.path, i.message)
            for i in issues
        )
    assert resource is not None
    return resource


# --- nodes and lines ------------------------------------------------------------------------


def line_of(node: Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def key_value(node: Node | None, key: str | int) -> tuple[Node, Node] | None:
    """(key node, value node) of `key` in a mapping node, or (item, item) in a sequence node."""
    if isinstance(node, MappingNode):
        for key_node, value_node in reversed(node.value):  # the last one wins, as in the data
            if isinstance(key_node, ScalarNode) and key_node.value == str(key):
                return key_node, value_node
    elif isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key], node.value[key]
    return None


def child(node: Node | None, key: str | int) -> Node | None:
    pair = key_value(node, key)
    return pair[1] if pair else None


def locate(document: Document, loc: Loc, error_type: str) -> tuple[Loc, int | None]:
    """The data path and the 1-based line of a pydantic error location in `document`.

    Segments that are not in the data (pydantic's internal names for union members...)
    are dropped, except the missing key of a `missing` error, which is kept in the path
    and located at the mapping that lacks it.
    """
    data, node = document.data, document.node
    path: list[str | int] = []
    line = document.line
    key_line: int | None = None  # the line of the key holding the current node, if any
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        present = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        )
        if not present:
            if last and error_type == "missing":
                path.append(part)
                line = key_line or line_of(node) or line
                return tuple(path), line
            continue
        path.append(part)
        pair = key_value(node, part)
        data = data[part]
        if pair is None:
            node, key_line = None, None
            continue
        key_node, node = pair
        key_line = line_of(key_node) if isinstance(part, str) else None
        if last and error_type == "extra_forbidden":
            return tuple(path), key_line
    if node is not None:
        # A scalar on its own line (e.g. a long string) is pointed at; a block mapping or list
        # starts on the line after its key, which is the more useful one.
        # An empty value (`kind:`) is pointed at by its key: libyaml marks it where the next
        # token starts, the pure-Python loader right after the colon.
        empty = isinstance(node, ScalarNode) and node.value == "" and not node.style
        line = line_of(node) if isinstance(node, ScalarNode) and not empty else (key_line or line_of(node))
    elif key_line is not None:
        line = key_line
    return tuple(path), line


def format_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# --- validation -----------------------------------------------------------------------------


def validate(document: Document, source: str) -> tuple[Resource | None, list[ManifestIssue]]:
    prefix = format_path(document.prefix)
    if not isinstance(document.data, dict):
        message = (
            f"a manifest must be a mapping with apiVersion, kind, metadata and spec (got {type_name(document.data)})"
        )
        return None, [ManifestIssue(source, document.line, prefix, message)]
    try:
        return parse_resource(document.data), []
    except ValidationError as e:
        errors = e.errors(include_url=False)
    kind = document.data.get("kind")
    issues: dict[tuple[int | None, str, str], None] = {}
    for error in errors:
        error_type = error["type"]
        loc: Loc = tuple(error["loc"])
        if error_type in ("union_tag_invalid", "union_tag_not_found"):
            loc = ("kind",)
            if error_type == "union_tag_not_found":
                error_type = "missing"
        elif loc and loc[0] == kind and kind in REGISTRY:
            loc = loc[1:]  # the union member's tag
        path, line = locate(document, loc, error_type)
        message = _message(error, kind, path)
        full_path = format_path(document.prefix + path)
        issues[(line, full_path, message)] = None
    return None, [ManifestIssue(source, line, path, message) for line, path, message in issues]


def _message(error: dict, kind: Any, path: Loc) -> str:
    error_type = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if error_type == "union_tag_invalid" and not isinstance(kind, str):
        return f"must be one of {', '.join(REGISTRY)} (got {_show(kind)})"
    if error_type == "union_tag_invalid":
        message = f"unknown kind {ctx.get('tag')!r}; known kinds: {', '.join(REGISTRY)}"
        try:
            return f"{message} (did you mean {kind_from_name(str(ctx.get('tag')))!r}?)"
        except ValueError:
            return message
    if error_type == "union_tag_not_found":
        return f"required field is missing (one of: {', '.join(REGISTRY)})"
    if error_type == "missing":
        return "required field is missing"
    if error_type == "extra_forbidden":
        allowed = _allowed_fields(kind, path[:-1])
        if not allowed:
            return "unknown field"
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown field (did you mean {close[0]!r}?)"
        return f"unknown field (allowed: {', '.join(allowed)})"
    if error_type in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if error_type in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping (got {type_name(value)})"
    if error_type == "list_type":
        return f"must be a list (got {type_name(value)})"
    if error_type == "string_type" and isinstance(value, int | float | bool):
        return f"must be a string (got {_show(value)}; quote it in YAML)"
    if error_type == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {_show(value)})"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("Input should be "):
        return f"must be {message.removeprefix('Input should be ')} (got {_show(value)})"
    return message[:1].lower() + message[1:]


def _allowed_fields(kind: Any, parent: Loc) -> list[str]:
    """The YAML field names of the model at `parent` in a document of `kind`, if known."""
    model: Any = REGISTRY[kind].model if isinstance(kind, str) and kind in REGISTRY else None
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in model.model_fields.items() if part in (f.alias, name)),
            None,
        )
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return type_name(value)
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
