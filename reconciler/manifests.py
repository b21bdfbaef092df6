"""Manifest files: YAML or JSON text holding one or many resource documents.

`parse_manifests` validates every document and reports every problem of every document
with its file and line (`manifests/a.yaml:12: spec.message: must be at most 140 characters
(got 141)`), or returns the resources: all valid, or none. Accepted shapes:

- YAML, one or many documents separated by `---` (empty documents are skipped);
- a YAML/JSON document `kind: List` with `items: [...]` (kubectl's list);
- a JSON document, or a JSON array of documents.

Line numbers come from the YAML node tree (`yaml.compose`), so an error points at the
field's line; an unknown field at its key, a missing field at the mapping that lacks it.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.resources import KINDS, MODELS, Resource, kind_from_name, parse_resource

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_LIST_KEYS = ("apiVersion", "kind", "metadata", "items")

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
class _Document:
    data: Any
    node: Node | None  # None when the line numbers are unknown
    prefix: Loc  # where the document sits in the text: () or ("items", 2) or (2,)
    line: int | None


# --- public API -----------------------------------------------------------------------------


def parse_manifests(text: str, source: str = "<stdin>") -> list[Resource]:
    """Every resource of `text`, or ManifestError with every issue of every document."""
    parsed, issues = _parse(text, source)
    _check_duplicates([(resource, source, line) for resource, line in parsed], issues)
    if issues:
        raise ManifestError(issues)
    return [resource for resource, _ in parsed]


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read for `paths`: files as given, directories recursively.

    In directories only `*.yaml`, `*.yml` and `*.json` are read, sorted, skipping hidden
    files and folders (`.git`, editor droppings). A path that does not exist raises
    ManifestError.
    """
    files, issues = _collect_files(paths)
    if issues:
        raise ManifestError(issues)
    return files


def load_paths(paths: list[str | Path]) -> list[tuple[Resource, str]]:
    """(resource, source path) for every document under `paths`, all valid, or ManifestError.

    A (kind, name) defined twice, in one file or across files, is an error too.
    """
    files, issues = _collect_files(paths)
    found: list[tuple[Resource, str, int | None]] = []
    for file in files:
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            issues.append(ManifestIssue(source, None, "", f"not UTF-8 text ({e.reason} at byte {e.start})"))
            continue
        except OSError as e:
            issues.append(ManifestIssue(source, None, "", f"cannot read: {e.strerror or e}"))
            continue
        parsed, file_issues = _parse(text, source)
        issues.extend(file_issues)
        found.extend((resource, source, line) for resource, line in parsed)
    _check_duplicates(found, issues)
    if issues:
        raise ManifestError(issues)
    return [(resource, source) for resource, source, _ in found]


# --- files ----------------------------------------------------------------------------------


def _collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[ManifestIssue]]:
    files: list[Path] = []
    issues: list[ManifestIssue] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix.lower() in MANIFEST_SUFFIXES
                    and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            issues.append(ManifestIssue(str(given), None, "", "no such file or directory"))
    return list(dict.fromkeys(files)), issues


def _check_duplicates(found: list[tuple[Resource, str, int | None]], issues: list[ManifestIssue]) -> None:
    first: dict[tuple[str, str], tuple[str, int | None]] = {}
    for resource, source, line in found:
        key = (resource.kind, resource.metadata.name)
        if key not in first:
            first[key] = (source, line)
            continue
        other_source, other_line = first[key]
        where = other_source if other_line is None else f"{other_source}:{other_line}"
        if other_source == source and other_line is not None:
            where = f"line {other_line}"
        issues.append(
            ManifestIssue(
                source, line, "metadata.name", f"duplicate {resource.kind} {resource.metadata.name!r} (also at {where})"
            )
        )


# --- text -> documents ----------------------------------------------------------------------


def _parse(text: str, source: str) -> tuple[list[tuple[Resource, int | None]], list[ManifestIssue]]:
    """(resource, line of its name) for each valid document, and the issues of the others."""
    documents, issues = _documents(text, source)
    parsed: list[tuple[Resource, int | None]] = []
    for document in documents:
        resource, document_issues = _validate(document, source)
        issues.extend(document_issues)
        if resource is not None:
            _, name_line = _locate(document, ("metadata", "name"), "value_error")
            parsed.append((resource, name_line))
    issues.sort(key=lambda issue: (issue.line is None, issue.line or 0))
    return parsed, issues


def _documents(text: str, source: str) -> tuple[list[_Document], list[ManifestIssue]]:
    """JSON when it parses as JSON (a `*.json` file must), YAML otherwise."""
    strict_json = source.lower().endswith(".json")
    if strict_json or text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            json_issue = ManifestIssue(source, e.lineno, "", f"invalid JSON: {e.msg} (column {e.colno})")
            if strict_json:
                return [], [json_issue]
        else:
            return _json_documents(text, data, source)
        # Maybe YAML in flow style; if that fails too, the JSON error is the clearer one.
        documents, issues = _yaml_documents(text, source)
        if issues and not documents:
            return [], [json_issue]
        return documents, issues
    return _yaml_documents(text, source)


def _json_documents(text: str, data: Any, source: str) -> tuple[list[_Document], list[ManifestIssue]]:
    # json.loads is the truth for the values (PyYAML differs on surrogate pairs, `1e5`...);
    # the YAML node tree of the same text only gives the line numbers. Tabs can only be
    # whitespace in valid JSON (inside strings they must be escaped), and YAML refuses them.
    node: Node | None
    try:
        nodes = list(yaml.compose_all(text.replace("\t", " "), Loader=yaml.SafeLoader))
        node = nodes[0] if len(nodes) == 1 else None
    except yaml.YAMLError:
        node = None
    duplicates = list(_duplicate_keys(node)) if node is not None else []
    if duplicates:
        return [], [_duplicate_issue(key, source) for key in duplicates]
    return _split(data, node, _line(node), source)


def _yaml_documents(text: str, source: str) -> tuple[list[_Document], list[ManifestIssue]]:
    documents: list[_Document] = []
    issues: list[ManifestIssue] = []
    loader = yaml.SafeLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.YAMLError as e:  # syntax: the rest of the stream cannot be read
                issues.append(_yaml_issue(e, source))
                break
            if node is None:
                continue
            duplicates = list(_duplicate_keys(node))
            if duplicates:
                issues.extend(_duplicate_issue(key, source) for key in duplicates)
                continue
            try:
                data = loader.construct_document(node)
            except yaml.YAMLError as e:  # e.g. an unsafe tag: this document only
                issues.append(_yaml_issue(e, source))
                continue
            if data is None:
                continue  # empty document
            split, split_issues = _split(data, node, _line(node), source)
            documents.extend(split)
            issues.extend(split_issues)
    finally:
        loader.dispose()
    return documents, issues


def _split(data: Any, node: Node | None, line: int | None, source: str) -> tuple[list[_Document], list[ManifestIssue]]:
    """One text-level document into resource documents (a list and `kind: List` hold several)."""
    if isinstance(data, list):
        return [
            _Document(item, _child(node, i), (i,), _line(_child(node, i)) or line)
            for i, item in enumerate(data)
            if item is not None
        ], []
    if not (isinstance(data, dict) and data.get("kind") == "List"):
        return [_Document(data, node, (), line)], []
    issues = []
    for key in data:
        if key not in _LIST_KEYS:
            pair = _pair(node, key)
            issues.append(
                ManifestIssue(
                    source,
                    _line(pair[0]) if pair else line,
                    str(key),
                    "unknown field (allowed: apiVersion, kind, items)",
                )
            )
    items = data.get("items")
    items_node = _child(node, "items")
    if not isinstance(items, list):
        where = _line(items_node) if items_node is not None else line
        issues.append(ManifestIssue(source, where, "items", f"must be a list of resources (got {_type_name(items)})"))
        return [], issues
    documents = [
        _Document(item, _child(items_node, i), ("items", i), _line(_child(items_node, i)) or line)
        for i, item in enumerate(items)
        if item is not None
    ]
    return documents, issues


def _yaml_issue(e: yaml.YAMLError, source: str) -> ManifestIssue:
    line = None
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        parts = [p for p in (e.context, e.problem) if p]
        message = ": ".join(parts) if parts else str(e)
    else:
        message = str(e)
    return ManifestIssue(source, line, "", f"invalid YAML: {message}")


def _duplicate_issue(key: ScalarNode, source: str) -> ManifestIssue:
    return ManifestIssue(source, _line(key), "", f"duplicate key {key.value!r} in a mapping")


def _duplicate_keys(root: Node) -> Iterator[ScalarNode]:
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                stack.append(value)
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in keys:
                        yield key
                    keys.add(key.value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


# --- nodes and lines ------------------------------------------------------------------------


def _line(node: Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _pair(node: Node | None, key: str | int) -> tuple[Node, Node] | None:
    """(key node, value node) of `key` in a mapping node, or (item, item) in a sequence node."""
    if isinstance(node, MappingNode):
        for key_node, value_node in reversed(node.value):  # the last one wins, as in the data
            if isinstance(key_node, ScalarNode) and key_node.value == str(key):
                return key_node, value_node
    elif isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key], node.value[key]
    return None


def _child(node: Node | None, key: str | int) -> Node | None:
    pair = _pair(node, key)
    return pair[1] if pair else None


def _locate(document: _Document, loc: Loc, error_type: str) -> tuple[Loc, int | None]:
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
                line = key_line or _line(node) or line
                return tuple(path), line
            continue
        path.append(part)
        pair = _pair(node, part)
        data = data[part]
        if pair is None:
            node, key_line = None, None
            continue
        key_node, node = pair
        key_line = _line(key_node) if isinstance(part, str) else None
        if last and error_type == "extra_forbidden":
            return tuple(path), key_line
    if node is not None:
        # A scalar on its own line (e.g. a long string) is pointed at; a block mapping or list
        # starts on the line after its key, which is the more useful one.
        line = _line(node) if isinstance(node, ScalarNode) else (key_line or _line(node))
    elif key_line is not None:
        line = key_line
    return tuple(path), line


def _format_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# --- validation -----------------------------------------------------------------------------


def _validate(document: _Document, source: str) -> tuple[Resource | None, list[ManifestIssue]]:
    prefix = _format_path(document.prefix)
    if not isinstance(document.data, dict):
        message = (
            f"a manifest must be a mapping with apiVersion, kind, metadata and spec (got {_type_name(document.data)})"
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
        elif loc and loc[0] == kind and kind in KINDS:
            loc = loc[1:]  # the union member's tag
        path, line = _locate(document, loc, error_type)
        message = _message(error, kind, path)
        full_path = _format_path(document.prefix + path)
        issues[(line, full_path, message)] = None
    return None, [ManifestIssue(source, line, path, message) for line, path, message in issues]


def _message(error: dict, kind: Any, path: Loc) -> str:
    error_type = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if error_type == "union_tag_invalid" and not isinstance(kind, str):
        return f"must be one of {', '.join(KINDS)} (got {_show(kind)})"
    if error_type == "union_tag_invalid":
        message = f"unknown kind {ctx.get('tag')!r}; known kinds: {', '.join(KINDS)}"
        try:
            return f"{message} (did you mean {kind_from_name(str(ctx.get('tag')))!r}?)"
        except ValueError:
            return message
    if error_type == "union_tag_not_found":
        return f"required field is missing (one of: {', '.join(KINDS)})"
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
        return f"must be a mapping (got {_type_name(value)})"
    if error_type == "list_type":
        return f"must be a list (got {_type_name(value)})"
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
    model: Any = MODELS.get(kind) if isinstance(kind, str) else None
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


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return _type_name(value)
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
