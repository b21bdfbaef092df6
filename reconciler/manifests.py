"""Manifest files: YAML or JSON text holding one or many resource documents.

`parse_manifests` validates every document and reports every problem of every document
with its file and line (`manifests/a.yaml:12: spec.message: must be at most 140 characters
(got 141)`), or returns the resources: all valid, or none. Accepted shapes:

- YAML, one or many documents separated by `---` (empty documents are skipped);
- a YAML/JSON document `kind: List` with `items: [...]` (kubectl's list);
- a JSON document, or a JSON array of documents.

Line numbers come from the YAML node tree (`yaml.compose`), so an error points at the
field's line; an unknown field at its key, a missing field at the mapping that lacks it.
The tree is built by libyaml (`CSafeLoader`) when PyYAML has it, by the pure-Python loader
otherwise; both give the same lines and messages here.

`parse_manifests(..., max_documents=N)` (the REST API's applies) counts the documents
before validating any and raises `TooManyDocuments` past N.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from .api import Resource
from .validation import (
    Document,
    ManifestError,
    ManifestIssue,
    child,
    from_data,
    key_value,
    line_of,
    locate,
    type_name,
    validate,
)

__all__ = [
    "APPLY_MAX_DOCUMENTS",
    "ManifestError",
    "ManifestIssue",
    "TooManyDocuments",
    "from_data",
    "load_paths",
    "manifest_files",
    "parse_manifests",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_LIST_KEYS = ("apiVersion", "kind", "metadata", "items")
# The most documents one apply through the REST API may hold (each is a row written under
# the database's write lock).
APPLY_MAX_DOCUMENTS = 500
# libyaml's loader where PyYAML was built with it (10-20 times faster), else the pure-Python one.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TooManyDocuments(ValueError):
    """More documents than one request may apply; nothing was validated or applied."""

    def __init__(self, count: int, limit: int) -> None:
        self.count, self.limit = count, limit
        super().__init__(f"{count} documents were sent; the limit is {limit} per request: split the apply")


# --- public API -----------------------------------------------------------------------------


def parse_manifests(text: str, source: str = "<stdin>", max_documents: int | None = None) -> list[Resource]:
    """Every resource of `text`, or ManifestError with every issue of every document.

    With `max_documents`, more documents than that raise TooManyDocuments (before any is
    validated)."""
    parsed, issues = _parse(text, source, max_documents)
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


def _parse(
    text: str, source: str, max_documents: int | None = None
) -> tuple[list[tuple[Resource, int | None]], list[ManifestIssue]]:
    """(resource, line of its name) for each valid document, and the issues of the others."""
    documents, issues = _documents(text, source)
    if max_documents is not None and len(documents) > max_documents:
        raise TooManyDocuments(len(documents), max_documents)
    parsed: list[tuple[Resource, int | None]] = []
    for document in documents:
        resource, document_issues = validate(document, source)
        issues.extend(document_issues)
        if resource is not None:
            _, name_line = locate(document, ("metadata", "name"), "value_error")
            parsed.append((resource, name_line))
    issues.sort(key=lambda issue: (issue.line is None, issue.line or 0))
    return parsed, issues


def _documents(text: str, source: str) -> tuple[list[Document], list[ManifestIssue]]:
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


def _json_documents(text: str, data: Any, source: str) -> tuple[list[Document], list[ManifestIssue]]:
    # json.loads is the truth for the values (PyYAML differs on surrogate pairs, `1e5`...);
    # the YAML node tree of the same text only gives the line numbers. Tabs can only be
    # whitespace in valid JSON (inside strings they must be escaped), and YAML refuses them.
    node = _json_node(text.replace("\t", " "))
    duplicates = list(_duplicate_keys(node)) if node is not None else []
    if duplicates:
        return [], [_duplicate_issue(key, source) for key in duplicates]
    return _split(data, node, line_of(node), source)


def _json_node(text: str) -> Node | None:
    """The node tree of one JSON text (for its lines), or None if YAML cannot read it.

    libyaml refuses the escaped surrogate pairs of ASCII-only JSON (`"\\ud83d\\ude80"`): they are
    read as private-use escapes of the same length (the values come from json.loads)."""
    for loader, view in ((_Loader, _SURROGATE_ESCAPE.sub(_private_use, text)), (yaml.SafeLoader, text)):
        try:
            nodes = list(yaml.compose_all(view, Loader=loader))
        except yaml.YAMLError:
            continue
        return nodes[0] if len(nodes) == 1 else None
    return None


_SURROGATE_ESCAPE = re.compile(r"\\(u[dD][89a-fA-F][0-9a-fA-F]{2}|.)", re.DOTALL)


def _private_use(match: re.Match[str]) -> str:
    escape = match.group(1)
    return "\\ue" + escape[2:] if len(escape) == 5 else match.group(0)


def _yaml_documents(text: str, source: str) -> tuple[list[Document], list[ManifestIssue]]:
    documents: list[Document] = []
    issues: list[ManifestIssue] = []
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:  # the pure-Python reader checks every character first
        return [], [_yaml_issue(e, source, text)]
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.YAMLError as e:  # syntax: the rest of the stream cannot be read
                issues.append(_yaml_issue(e, source, text))
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
            split, split_issues = _split(data, node, line_of(node), source)
            documents.extend(split)
            issues.extend(split_issues)
    finally:
        loader.dispose()
    return documents, issues


def _split(data: Any, node: Node | None, line: int | None, source: str) -> tuple[list[Document], list[ManifestIssue]]:
    """One text-level document into resource documents (a list and `kind: List` hold several)."""
    if isinstance(data, list):
        return [
            Document(item, child(node, i), (i,), line_of(child(node, i)) or line)
            for i, item in enumerate(data)
            if item is not None
        ], []
    if not (isinstance(data, dict) and data.get("kind") == "List"):
        return [Document(data, node, (), line)], []
    issues = []
    for key in data:
        if key not in _LIST_KEYS:
            pair = key_value(node, key)
            issues.append(
                ManifestIssue(
                    source,
                    line_of(pair[0]) if pair else line,
                    str(key),
                    "unknown field (allowed: apiVersion, kind, items)",
                )
            )
    items = data.get("items")
    items_node = child(node, "items")
    if not isinstance(items, list):
        where = line_of(items_node) if items_node is not None else line
        issues.append(ManifestIssue(source, where, "items", f"must be a list of resources (got {type_name(items)})"))
        return [], issues
    documents = [
        Document(item, child(items_node, i), ("items", i), line_of(child(items_node, i)) or line)
        for i, item in enumerate(items)
        if item is not None
    ]
    return documents, issues


def _yaml_issue(e: yaml.YAMLError, source: str, text: str = "") -> ManifestIssue:
    line = None
    if isinstance(e, ReaderError) and isinstance(e.character, int):
        # The first such character of the text (positions differ: characters or UTF-8 bytes).
        at = text.find(chr(e.character))
        line = text.count("\n", 0, at) + 1 if at >= 0 else None
        message = f"unacceptable character U+{e.character:04X} (control characters are not allowed)"
    elif isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        parts = [p for p in (e.context, e.problem) if p]
        message = ": ".join(parts) if parts else str(e)
    else:
        message = str(e)
    return ManifestIssue(source, line, "", f"invalid YAML: {message}")


def _duplicate_issue(key: ScalarNode, source: str) -> ManifestIssue:
    return ManifestIssue(source, line_of(key), "", f"duplicate key {key.value!r} in a mapping")


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
