"""The images a classic-builder Dockerfile reads from: every `FROM` and `COPY --from` (also
under `ONBUILD`) that is not a stage, with the `ARG`s before the first `FROM` (their
defaults, the request's `buildargs` over them) substituted as the engine substitutes them.
What cannot be read the way the engine reads it is a 400: nothing half-read is judged."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping

from .model import Refused, rule

DOCKERFILE = rule("dockerfile", "a Dockerfile outside the build context, or from a URL")
UNREADABLE = rule("Dockerfile", "a Dockerfile the proxy cannot read (its base images are checked)", 400)
DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SUBSTITUTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])(.*))?", re.S)
DEFAULT = "Dockerfile"


def dockerfile_path(value: str) -> str:
    """The `dockerfile` query parameter as a clean path inside the context; `Refused` when it
    leaves the context or is a URL (the engine would fetch it)."""
    value = value or DEFAULT
    if "://" in value or value.startswith("git@"):
        raise DOCKERFILE.refuse(f"{value} is a URL; send the Dockerfile in the context")
    clean = posixpath.normpath(value)
    if value.startswith("/") or clean == ".." or clean.startswith("../"):
        raise DOCKERFILE.refuse(f"{value} is outside the build context")
    return clean


def build_args(raw: str) -> dict[str, str]:
    """The request's `buildargs` (a JSON object; a null value leaves the ARG's default)."""
    try:
        found = json.loads(raw or "{}")
    except json.JSONDecodeError as e:
        raise Refused(400, f"buildargs: not JSON ({e.msg})", "buildargs") from e
    if not isinstance(found, dict):
        raise Refused(400, "buildargs: not a JSON object", "buildargs")
    return {str(k): str(v) for k, v in found.items() if v is not None}


def base_images(text: str, buildargs: Mapping[str, str]) -> list[str]:
    """Every image reference the build would read (stages and `scratch` left out), in order."""
    escape, lines = _instructions(text)
    meta: dict[str, str] = {}
    stages: list[str] = []  # lower-cased names ("" for an unnamed stage): a later FROM may name one
    refs: list[str] = []
    for line in lines:
        word, rest = _split_first(line)
        instruction = word.lower()
        if instruction == "onbuild":  # runs in a build FROM this image: judged now, as if here
            word, rest = _split_first(rest)
            instruction = word.lower()
            if instruction != "copy":
                continue
        if instruction == "arg" and not stages:
            for name, value in _args(rest, meta, escape):
                meta[name] = buildargs.get(name, value)
        elif instruction == "from":
            flags, words = _flags(rest)
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise UNREADABLE.refuse(f"FROM {rest!r} is not `FROM [--platform=...] image [AS name]`")
            image = _expand(words[0], meta, escape)
            if not image:
                raise UNREADABLE.refuse(f"FROM {rest!r} names no image")
            if image != "scratch" and image.lower() not in stages:
                refs.append(image)
            stages.append(words[2].lower() if len(words) == 3 else "")
        elif instruction == "copy":
            flags, _ = _flags(rest)
            for source in (v for k, v in flags if k == "from"):
                for ref in {source, _expand(source, meta, escape)}:  # expanded or not: both judged
                    if ref and not ref.isdigit() and ref.lower() not in stages:
                        refs.append(ref)
    if not stages:
        raise UNREADABLE.refuse("no FROM")
    return list(dict.fromkeys(refs))


def _instructions(text: str) -> tuple[str, list[str]]:
    """(the escape character, the logical lines): parser directives read, comments and blank
    lines dropped, continuations joined as the engine's parser joins them."""
    raw = text.removeprefix("\ufeff").splitlines()
    escape = "\\"
    for line in raw:
        found = DIRECTIVE.match(line)
        if not found:
            break
        if found.group(1).lower() == "escape":
            if found.group(2) not in ("\\", "`"):
                raise UNREADABLE.refuse(f"escape={found.group(2)} is not \\ or `")
            escape = found.group(2)
    lines: list[str] = []
    current: str | None = None
    for line in raw:
        bare = line.strip()
        if current is None:
            if not bare or bare.startswith("#"):
                continue
            line = line.lstrip()
        elif not bare or bare.startswith("#"):
            continue  # a comment or an empty line inside a continuation
        trimmed = line.rstrip()
        more = trimmed.endswith(escape)
        piece = trimmed[:-1] if more else line
        current = piece if current is None else current + piece
        if not more:
            lines.append(current)
            current = None
    if current is not None:
        lines.append(current)
    return escape, lines


def _split_first(line: str) -> tuple[str, str]:
    parts = line.strip().split(None, 1)
    return (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")


def _flags(rest: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(the leading `--name=value` flags, the words after them)."""
    words = rest.split()
    flags = []
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags.append((name.lower(), value))
    return flags, words


def _args(rest: str, meta: Mapping[str, str], escape: str) -> list[tuple[str, str]]:
    found = []
    for word in _words(rest, escape):
        name, has, value = word.partition("=")
        if not NAME.fullmatch(name):
            raise UNREADABLE.refuse(f"ARG {rest!r}: {name!r} is not a name")
        found.append((name, _expand(value, {**meta, **dict(found)}, escape) if has else ""))
    return found


def _words(text: str, escape: str) -> list[str]:
    """Whitespace-separated words, quotes kept (the expansion removes them)."""
    words, current, quote, i = [], "", "", 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if c in "'\"" and (not quote or quote == c):
            quote = "" if quote else c
        if c.isspace() and not quote:
            if current:
                words.append(current)
            current = ""
        else:
            current += c
        i += 1
    if quote:
        raise UNREADABLE.refuse(f"an unterminated quote in {text!r}")
    return [*words, current] if current else words


def _expand(word: str, env: Mapping[str, str], escape: str) -> str:
    """`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}`, quotes and escapes, as the engine's
    shell lexer reads them; anything else it might read otherwise is `Refused`."""
    out, quote, i = [], "", 0
    while i < len(word):
        c = word[i]
        if c == escape and quote != "'" and i + 1 < len(word):
            out.append(word[i + 1])
            i += 2
        elif c in "'\"" and (not quote or quote == c):
            quote = "" if quote else c
            i += 1
        elif c == "$" and quote != "'":
            value, i = _variable(word, i + 1, env, escape)
            out.append(value)
        else:
            out.append(c)
            i += 1
    if quote:
        raise UNREADABLE.refuse(f"an unterminated quote in {word!r}")
    return "".join(out)


def _variable(word: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    if i < len(word) and word[i] == "{":
        end = word.find("}", i)
        if end < 0:
            raise UNREADABLE.refuse(f"an unterminated ${{ in {word!r}")
        inner = word[i + 1 : end]
        found = SUBSTITUTION.fullmatch(inner)
        if found is None or "$" in (found.group(3) or ""):
            raise UNREADABLE.refuse(f"${{{inner}}} is not a substitution the proxy reads")
        name, op, alternative = found.groups()
        value = env.get(name, "")
        if op == ":-":
            value = value or _expand(alternative, env, escape)
        elif op == ":+":
            value = _expand(alternative, env, escape) if value else ""
        return value, end + 1
    found = NAME.match(word, i)
    if found is None:
        return "$", i
    return env.get(found.group(0), ""), found.end()
