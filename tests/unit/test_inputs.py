"""Inputs a requester controls (issue 11, items 7 and 9): manifest bodies are parsed with
libyaml where present, capped in documents, and give the same lines and messages as the
pure-Python loader; a broadcast message is one line of code points, without control or
bidirectional-override characters."""

from __future__ import annotations

import json
import random

import pytest
import yaml

import reconciler.manifests as manifests
from reconciler.api.broadcast import BroadcastSpec
from reconciler.api.fields import MESSAGE_MAX
from reconciler.manifests import APPLY_MAX_DOCUMENTS, ManifestError, TooManyDocuments, parse_manifests
from tests.helpers import broadcasts

LOADERS = [pytest.param(yaml.SafeLoader, id="pure")]
if hasattr(yaml, "CSafeLoader"):
    LOADERS.append(pytest.param(yaml.CSafeLoader, id="libyaml"))


@pytest.fixture(params=LOADERS)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    monkeypatch.setattr(manifests, "_Loader", request.param)
    return request.param


def outcome(text: str, source: str = "m.yaml") -> list:
    try:
        return [(r.kind, r.metadata.name) for r in parse_manifests(text, source)]
    except ManifestError as e:
        return [(i.line, i.path, i.message) for i in e.issues]


# --- item 7: the loader, the document cap --------------------------------------------------


def test_libyaml_is_used_where_present() -> None:
    assert manifests._Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def test_too_many_documents_names_the_count_and_the_limit() -> None:
    text = broadcasts(APPLY_MAX_DOCUMENTS + 1)
    with pytest.raises(TooManyDocuments) as info:
        parse_manifests(text, "request", max_documents=APPLY_MAX_DOCUMENTS)
    assert (info.value.count, info.value.limit) == (APPLY_MAX_DOCUMENTS + 1, APPLY_MAX_DOCUMENTS)
    assert str(info.value) == "501 documents were sent; the limit is 500 per request: split the apply"
    assert len(parse_manifests(broadcasts(APPLY_MAX_DOCUMENTS), "request", max_documents=APPLY_MAX_DOCUMENTS)) == 500
    # Files (GitOps, hubctl validate) have no cap; list items count one by one.
    assert len(parse_manifests(text, "request")) == 501
    items = [yaml.safe_load(d) for d in broadcasts(3).split("---\n")[1:]]
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    with pytest.raises(TooManyDocuments, match=r"^3 documents"):
        parse_manifests(listed, "request", max_documents=2)


def test_the_cap_is_checked_before_validation() -> None:
    with pytest.raises(TooManyDocuments):  # invalid documents: still the count, not 600 issues
        parse_manifests(broadcasts(600, message="'" + "x" * 200 + "'"), "request", max_documents=500)


def test_a_megabyte_of_small_documents_is_refused_by_count_with_the_c_loader() -> None:
    text = broadcasts(11_000)
    assert len(text.encode()) > 1_000_000
    with pytest.raises(TooManyDocuments, match=r"^11000 documents were sent"):
        parse_manifests(text, "request", max_documents=APPLY_MAX_DOCUMENTS)
    # libyaml builds the tree where PyYAML has it (the pure-Python loader took about 5 s for
    # this). Not timed here: a loaded machine fails a timed test; speed is for benchmarks/.
    assert manifests._Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def test_json_with_escaped_surrogates_keeps_its_lines(loader: type) -> None:
    one = {"apiVersion": "jupyterhub-ds/v1", "kind": "Broadcast", "metadata": {"name": "b"}, "spec": {}}
    one["spec"] = {"message": "\U0001f680 " * 3, "type": "loud"}
    text = json.dumps([one], indent=2)  # ensure_ascii: "\ud83d\ude80"
    assert "\\ud83d\\ude80" in text
    [(line, path, _)] = outcome(text, "body.json")
    assert path == "[0].spec.type" and text.splitlines()[line - 1].strip().startswith('"type"')
    # A duplicate key is still found through the escapes.
    text = '{"apiVersion": "jupyterhub-ds/v1",\n "kind": "Broadcast",\n "kind": "x\\ud83d\\ude80"}'
    assert outcome(text, "body.json") == [(3, "", "duplicate key 'kind' in a mapping")]


def test_a_nul_is_an_issue_with_its_line_not_a_crash(loader: type) -> None:
    text = "apiVersion: jupyterhub-ds/v1\nkind: Broadcast\n# \u00e9\U0001f680\nmetadata: {name: \x00b}\n"
    assert outcome(text) == [
        (4, "", "invalid YAML: unacceptable character U+0000 (control characters are not allowed)")
    ]


def test_an_empty_value_points_at_its_key(loader: type) -> None:
    assert outcome('{\n  "apiVersion": "jupyterhub-ds/v1",\n  "kind": \n}\n')[0][:2] == (3, "kind")


def _mutations(base: str, seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = list(":-{}[]\"' \n#&*!|>%@`,?x1")
    texts = []
    for _ in range(count):
        chars = list(base)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(chars))
            chars[i : i + rnd.randint(0, 1)] = [rnd.choice(alphabet)] * rnd.randint(0, 1)
        texts.append("".join(chars))
    return texts


def test_both_loaders_agree_on_what_both_can_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where both loaders read a text, every line, path and message is the same; they differ
    only in the wording of YAML syntax errors (and libyaml reads a few texts PyYAML refuses)."""
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    base = broadcasts(2, message="'Maintenance at 18:00'") + (
        "---\napiVersion: jupyterhub-ds/v1\nkind: VolumeReset\nmetadata:\n  name: vr\n"
        "spec:\n  user: alice\n  volumes:\n    - cache\n    - home\n"
    )
    compared = 0
    for text in _mutations(base, seed=11, count=1500):
        results = []
        for each in (yaml.SafeLoader, yaml.CSafeLoader):
            monkeypatch.setattr(manifests, "_Loader", each)
            results.append(outcome(text))
        if any(len(r) == 3 and str(r[2]).startswith("invalid YAML") for found in results for r in found):
            continue
        compared += 1
        assert results[0] == results[1], text
    assert compared > 500


# --- item 9: the message -------------------------------------------------------------------


def message_error(message: str) -> str:
    try:
        BroadcastSpec.model_validate({"message": message})
    except ValueError as e:
        return str(e)
    return ""


def test_code_points_are_counted() -> None:
    assert message_error("\U0001f680" * MESSAGE_MAX) == ""
    assert "must be at most 140 characters (got 141)" in message_error("\U0001f680" * (MESSAGE_MAX + 1))
    assert BroadcastSpec.model_validate({"message": " \U0001f680 \n"}).message == "\U0001f680"  # trimmed


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("a\x00b", "must not contain control characters (U+0000 at character 2)"),
        ("tab\there", "must not contain control characters (U+0009 at character 4)"),
        ("del\x7f", "must not contain control characters (U+007F at character 4)"),
        ("line one\nline two", "must be one line: line breaks are not allowed (U+000A at character 9)"),
        ("a\r\nb", "must be one line: line breaks are not allowed (U+000D at character 2)"),
        ("a\u2028b", "must be one line: line breaks are not allowed (U+2028 at character 2)"),
        ("pay \u202egnp.exe", "must not contain bidirectional override or isolate characters (U+202E at character 5)"),
        ("x\u202ay", "must not contain bidirectional override or isolate characters (U+202A at character 2)"),
        ("x\u2066y\u2069", "must not contain bidirectional override or isolate characters (U+2066 at character 2)"),
    ],
)
def test_invisible_characters_are_refused(message: str, expected: str) -> None:
    assert expected in message_error(message)


def test_ordinary_text_is_kept() -> None:
    for message in (
        "Hub restarts at 18:00 \u2014 save your work",
        "\u05e9\u05dc\u05d5\u05dd world",
        "caf\u00e9 \u2615",
    ):
        assert BroadcastSpec.model_validate({"message": message}).message == message
