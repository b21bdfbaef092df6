"""Manifest parsing: every error of every document, each with its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.api.broadcast import Broadcast
from reconciler.api.groupmembership import GroupMembership
from reconciler.api.serverrestart import ServerRestart
from reconciler.api.volumereset import VolumeReset
from reconciler.manifests import ManifestError, ManifestIssue, load_paths, manifest_files, parse_manifests

REPO = Path(__file__).resolve().parents[2]

GROUP = """\
apiVersion: jupyterhub-ds/v1
kind: GroupMembership
metadata:
  name: docker-privileged
spec:
  group: docker-privileged
  members: [admin]
  prune: true
"""


def issues_of(text: str, source: str = "m.yaml") -> list[ManifestIssue]:
    with pytest.raises(ManifestError) as info:
        parse_manifests(text, source)
    assert str(info.value) == "\n".join(str(i) for i in info.value.issues)
    return info.value.issues


def where(issues: list[ManifestIssue]) -> list[tuple[int | None, str]]:
    return [(i.line, i.path) for i in issues]


def broadcast(message: str, name: str = "maintenance") -> str:
    return f"""\
apiVersion: jupyterhub-ds/v1
kind: Broadcast
metadata:
  name: {name}
spec:
  message: {json.dumps(message)}
"""


def test_issue_format() -> None:
    issue = ManifestIssue("manifests/a.yaml", 12, "spec.message", "must be at most 140 characters (got 141)")
    assert str(issue) == "manifests/a.yaml:12: spec.message: must be at most 140 characters (got 141)"
    assert str(ManifestIssue("a.yaml", None, "", "no such file or directory")) == "a.yaml: no such file or directory"
    assert str(ManifestIssue("a.yaml", 3, "", "invalid YAML: x")) == "a.yaml:3: invalid YAML: x"
    error = ManifestError([issue, issue])
    assert isinstance(error, ValueError) and str(error).count("\n") == 1


def test_every_kind_valid() -> None:
    text = "\n---\n".join(
        [
            GROUP,
            broadcast("Maintenance tonight at 18:00"),
            "apiVersion: jupyterhub-ds/v1\nkind: VolumeReset\nmetadata: {name: reset-alice}\n"
            "spec: {user: alice, volumes: [cache]}\n",
            "apiVersion: jupyterhub-ds/v1\nkind: ServerRestart\nmetadata: {name: restart-alice}\nspec: {user: alice}\n",
        ]
    )
    resources = parse_manifests(text)
    assert [type(r) for r in resources] == [GroupMembership, Broadcast, VolumeReset, ServerRestart]
    assert resources[0].spec.members == ["admin"] and resources[0].spec.prune is True


def test_message_of_141_characters_is_rejected_with_file_and_line() -> None:
    [issue] = issues_of(broadcast("x" * 141), "manifests/a.yaml")
    assert (issue.source, issue.line, issue.path) == ("manifests/a.yaml", 6, "spec.message")
    assert str(issue) == "manifests/a.yaml:6: spec.message: must be at most 140 characters (got 141)"


def test_message_of_140_characters_and_trimming() -> None:
    [r] = parse_manifests(broadcast("x" * 140))
    assert len(r.spec.message) == 140
    [r] = parse_manifests(broadcast("   " + "x" * 140 + "  \n"))
    assert r.spec.message == "x" * 140


def test_a_long_block_scalar_points_at_its_line() -> None:
    text = broadcast("x").replace('  message: "x"\n', "  type: info\n  message: >-\n    " + "y" * 141 + "\n")
    [issue] = issues_of(text)
    assert (issue.line, issue.path) == (7, "spec.message")


def test_unknown_kind() -> None:
    text = "apiVersion: jupyterhub-ds/v1\nkind: Pod\nmetadata: {name: a}\nspec: {}\n"
    [issue] = issues_of(text)
    assert (issue.line, issue.path) == (2, "kind")
    kinds = "Broadcast, VolumeReset, ServerRestart, GroupMembership, IdleCullPolicy, GroupPolicy, RolloutRestart"
    kinds += ", VolumeBackup, VolumeRestore, BackupSchedule, ServerStop, UserRename, Roster, UserRemoval"
    assert issue.message == f"unknown kind 'Pod'; known kinds: {kinds}"
    [issue] = issues_of(text.replace("Pod", "groupmembership"))
    assert "did you mean 'GroupMembership'?" in issue.message


def test_missing_kind_and_wrong_api_version() -> None:
    [issue] = issues_of("apiVersion: jupyterhub-ds/v1\nmetadata: {name: a}\n")
    assert (issue.line, issue.path) == (1, "kind")
    assert "required" in issue.message
    [issue] = issues_of(GROUP.replace("jupyterhub-ds/v1", "v1"))
    assert (issue.line, issue.path) == (1, "apiVersion")
    assert issue.message == "unsupported apiVersion 'v1'; expected 'jupyterhub-ds/v1'"


def test_unknown_field_points_at_the_key() -> None:
    text = GROUP.replace("  prune: true\n", "  prnue: true\n")
    [issue] = issues_of(text)
    assert (issue.line, issue.path) == (8, "spec.prnue")
    assert issue.message == "unknown field (did you mean 'prune'?)"
    [issue] = issues_of(GROUP + "extra: {a: 1}\n")
    assert (issue.line, issue.path) == (9, "extra")
    assert "allowed: apiVersion, kind, metadata, spec, status" in issue.message
    # The Python attribute names are not manifest field names.
    [issue] = issues_of(broadcast("m") + "  auto_close: false\n")
    assert (issue.line, issue.path, issue.message) == (
        7,
        "spec.auto_close",
        "unknown field (did you mean 'autoClose'?)",
    )


def test_missing_field_points_at_the_mapping_that_lacks_it() -> None:
    text = "apiVersion: jupyterhub-ds/v1\nkind: VolumeReset\nmetadata:\n  name: a\nspec:\n  volumes: [home]\n"
    [issue] = issues_of(text)
    assert (issue.line, issue.path, issue.message) == (5, "spec.user", "required field is missing")
    [issue] = issues_of("apiVersion: jupyterhub-ds/v1\nkind: ServerRestart\nmetadata: {name: a}\n")
    assert (issue.line, issue.path) == (1, "spec")


def test_bad_name() -> None:
    [issue] = issues_of(GROUP.replace("name: docker-privileged", "name: Docker_Privileged"))
    assert (issue.line, issue.path) == (4, "metadata.name")
    assert "DNS-1123" in issue.message and "'Docker_Privileged'" in issue.message


def test_every_issue_of_every_document_with_its_line() -> None:
    text = (
        GROUP  # lines 1-8: valid
        + "---\n"  # 9
        + "apiVersion: jupyterhub-ds/v1\n"  # 10
        + "kind: Broadcast\n"  # 11
        + "metadata:\n"  # 12
        + "  name: Bad\n"  # 13
        + "spec:\n"  # 14
        + f"  message: {'x' * 141}\n"  # 15
        + "  autoClose: true\n"  # 16
        + "---\n"  # 17
        + "\n"  # 18
        + "apiVersion: jupyterhub-ds/v1\n"  # 19
        + "kind: VolumeReset\n"  # 20
        + "metadata: {name: reset}\n"  # 21
        + "spec:\n"  # 22
        + "  user: Alice\n"  # 23
        + "  volumes:\n"  # 24
        + "    - home\n"  # 25
        + "    - Home\n"  # 26
        + "  colour: blue\n"  # 27
    )
    issues = issues_of(text, "manifests/mixed.yaml")
    assert where(issues) == [
        (13, "metadata.name"),
        (15, "spec.message"),
        (16, "spec.autoClose"),
        (23, "spec.user"),
        (26, "spec.volumes[1]"),
        (27, "spec.colour"),
    ]
    assert all(i.source == "manifests/mixed.yaml" for i in issues)
    assert "write 'alice'" in issues[3].message
    assert issues[2].message == "must be false or a number of milliseconds >= 0 (got true)"


def test_yaml_syntax_error_line() -> None:
    text = GROUP + "---\napiVersion: jupyterhub-ds/v1\nkind: [unclosed\nmetadata: {name: a}\n"
    issues = issues_of(text)
    assert len(issues) == 1
    assert issues[0].line in (11, 12)
    assert issues[0].message.startswith("invalid YAML: ")
    [issue] = issues_of("a: 1\n  b: 2\n")
    assert issue.line == 2


def test_errors_before_a_syntax_error_are_reported_too() -> None:
    text = broadcast("x" * 141) + "---\nkind: :\n  - x\n - y\n"
    issues = issues_of(text)
    assert issues[0].line == 6 and issues[0].path == "spec.message"
    assert issues[-1].message.startswith("invalid YAML")


def test_duplicate_keys_are_an_error() -> None:
    [issue] = issues_of(GROUP + "spec: {group: other}\n")
    assert issue.line == 9 and "duplicate key 'spec'" in issue.message
    [issue] = issues_of('{"kind": "GroupMembership",\n "kind": "Broadcast"}', "a.json")
    assert issue.line == 2 and "duplicate key 'kind'" in issue.message


def test_unsafe_tags_are_refused() -> None:
    [issue] = issues_of(GROUP.replace("[admin]", "!!python/object/apply:os.system [echo]"))
    assert issue.line == 7 and "invalid YAML" in issue.message


def test_status_in_the_input_is_ignored() -> None:
    [r] = parse_manifests(GROUP + "status:\n  phase: Ready\n  observedGeneration: 7\n  anything: [1, 2]\n")
    assert r.status is None


def test_empty_documents_are_skipped() -> None:
    assert parse_manifests("") == []
    assert parse_manifests("# only a comment\n---\n---\n") == []
    assert len(parse_manifests("---\n" + GROUP + "---\n# trailing\n")) == 1


def test_a_document_must_be_a_mapping() -> None:
    [issue] = issues_of("just text\n")
    assert issue.line == 1 and "must be a mapping" in issue.message


def test_duplicate_names_in_one_text() -> None:
    text = GROUP + "---\n" + GROUP.replace("members: [admin]", "members: [bob]")
    [issue] = issues_of(text)
    assert (issue.line, issue.path) == (13, "metadata.name")
    assert issue.message == "duplicate GroupMembership 'docker-privileged' (also at line 4)"
    # The same name under another kind is fine.
    other = "apiVersion: jupyterhub-ds/v1\nkind: ServerRestart\nmetadata: {name: docker-privileged}\nspec: {user: a}\n"
    assert len(parse_manifests(GROUP + "---\n" + other)) == 2


def test_kubectl_list() -> None:
    text = (
        "apiVersion: v1\n"
        "kind: List\n"
        "items:\n"
        "- apiVersion: jupyterhub-ds/v1\n"
        "  kind: ServerRestart\n"
        "  metadata: {name: a}\n"
        "  spec: {user: alice}\n"
        "- apiVersion: jupyterhub-ds/v1\n"
        "  kind: ServerRestart\n"
        "  metadata: {name: b}\n"
        "  spec: {user: alice, sever: x}\n"
    )
    [issue] = issues_of(text)
    assert (issue.line, issue.path) == (11, "items[1].spec.sever")
    assert len(parse_manifests(text.replace(", sever: x", ""))) == 2
    [issue] = issues_of("kind: List\nitems: 3\n")
    assert (issue.line, issue.path) == (2, "items")


def test_json_document_and_json_list() -> None:
    one = {
        "apiVersion": "jupyterhub-ds/v1",
        "kind": "Broadcast",
        "metadata": {"name": "b"},
        "spec": {"message": "\U0001f680 deploy \u00e9", "autoClose": False},
    }
    [r] = parse_manifests(json.dumps(one))  # ensure_ascii: surrogate pairs must decode right
    assert r.spec.message == "\U0001f680 deploy \u00e9" and r.spec.auto_close is False
    two = dict(one, metadata={"name": "c"}, spec={"message": "x" * 141})
    text = json.dumps([one, two], indent="\t")  # tabs: valid JSON, invalid YAML
    [issue] = issues_of(text, "body.json")
    assert issue.path == "[1].spec.message" and issue.source == "body.json"
    assert text.splitlines()[issue.line - 1].strip().startswith('"message"')
    assert len(parse_manifests(json.dumps([one, dict(one, metadata={"name": "c"})]))) == 2


def test_invalid_json() -> None:
    text = '{\n  "apiVersion": "jupyterhub-ds/v1",\n  "kind": \n}\n'
    [issue] = issues_of(text, "body.json")  # a .json file must be JSON
    assert issue.line == 4 and issue.message.startswith("invalid JSON: ")
    [issue] = issues_of(text, "<stdin>")  # otherwise it may be YAML in flow style: `kind` is null there
    assert (issue.line, issue.path) == (3, "kind")
    assert issue.message.startswith("must be one of Broadcast, ")
    [issue] = issues_of('[{"a": 1},\n {"b": 2]\n', "<stdin>")  # neither JSON nor YAML
    assert issue.line == 2 and issue.message.startswith("invalid JSON: ")
    assert parse_manifests("{apiVersion: jupyterhub-ds/v1, kind: ServerRestart, metadata: {name: a}, spec: {user: b}}")


def test_load_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b.yaml").write_text(GROUP)
    (tmp_path / "sub" / "a.yml").write_text(broadcast("hello"))
    (tmp_path / "c.json").write_text(
        json.dumps({"apiVersion": "jupyterhub-ds/v1", "kind": "ServerRestart", "metadata": {"name": "r"},
                    "spec": {"user": "alice"}})
    )  # fmt: skip
    (tmp_path / "README.md").write_text("not a manifest")
    (tmp_path / ".git" / "x.yaml").write_text("not: [valid")
    (tmp_path / ".hidden.yaml").write_text("not: [valid")
    loaded = load_paths([tmp_path])
    assert [(r.kind, Path(s).relative_to(tmp_path).as_posix()) for r, s in loaded] == [
        ("GroupMembership", "b.yaml"),
        ("ServerRestart", "c.json"),
        ("Broadcast", "sub/a.yml"),
    ]
    assert manifest_files([tmp_path, tmp_path / "b.yaml"]) == [
        tmp_path / "b.yaml",
        tmp_path / "c.json",
        tmp_path / "sub" / "a.yml",
    ]


def test_load_paths_reports_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(broadcast("x" * 141))
    (tmp_path / "b.yaml").write_text(GROUP + "---\n" + broadcast("ok", name="second"))
    (tmp_path / "c.yaml").write_text(GROUP)  # the same GroupMembership as in b.yaml
    (tmp_path / "d.yaml").write_text("a: [1\n")
    with pytest.raises(ManifestError) as info:
        load_paths([tmp_path, tmp_path / "missing.yaml"])
    got = [(Path(i.source).name, i.line, i.path) for i in info.value.issues]
    assert got == [
        ("missing.yaml", None, ""),
        ("a.yaml", 6, "spec.message"),
        ("d.yaml", 2, ""),
        ("c.yaml", 4, "metadata.name"),
    ]
    duplicate = info.value.issues[-1].message
    assert "duplicate GroupMembership 'docker-privileged'" in duplicate and f"{tmp_path / 'b.yaml'}:4" in duplicate


def test_example_manifests_are_valid() -> None:
    loaded = load_paths([REPO / "manifests"])
    privileged = [r for r, _ in loaded if r.metadata.name == "docker-privileged"]
    assert len(privileged) == 1
    assert privileged[0].kind == "GroupMembership"
    assert privileged[0].spec.group == "docker-privileged"
    assert privileged[0].spec.members == [] and privileged[0].spec.prune is True
    assert not any(isinstance(r, Broadcast) for r, _ in loaded)
