"""`hubctl users import|export`: a CSV turned into a Roster manifest, errors with their lines,
and an export that imports again."""

from __future__ import annotations

import pytest
import yaml

from reconciler.cli.client import CliError
from reconciler.cli.main import main
from reconciler.cli.users import CsvError, export_csv, parse_csv, roster_manifest


def test_a_csv_with_a_header_becomes_a_roster() -> None:
    text = (
        "name,groups,email,displayName\n"
        "alice,course-a;tutors,alice@example.org,Alice A.\n"
        "bob,course-a course-b,,\n"
        "\n"
        "# a comment\n"
        "carol,,carol@example.org\n"
        "dave\n"
    )
    manifest = roster_manifest("course-2026", parse_csv(text))
    assert manifest["kind"] == "Roster" and manifest["metadata"] == {"name": "course-2026"}
    assert manifest["spec"]["removal"] == "keep" and manifest["spec"]["passwords"] == "oneTime"
    assert manifest["spec"]["users"] == [
        {"name": "alice", "groups": ["course-a", "tutors"], "email": "alice@example.org", "displayName": "Alice A."},
        {"name": "bob", "groups": ["course-a", "course-b"]},
        {"name": "carol", "groups": [], "email": "carol@example.org"},
        {"name": "dave", "groups": []},
    ]


def test_every_problem_is_reported_with_its_line() -> None:
    text = (
        "name,groups,email\n"
        "alice,course-a,alice@example.org\n"
        "Bob,course-a,\n"  # line 3: uppercase
        "carol,bad/group,\n"  # line 4
        "dave,,not-an-address\n"  # line 5
        "alice,course-b,\n"  # line 6: twice
        "erin,a,b@c.d,E,extra\n"  # line 7: too many columns
    )
    with pytest.raises(CsvError) as e:
        parse_csv(text, "people.csv")
    problems = e.value.problems
    assert [p.split(":")[1] for p in problems] == ["3", "4", "5", "6", "7"]
    assert "people.csv:3: name usernames are lowercase" in problems[0]
    assert "bad/group" in problems[1]
    assert "not-an-address" in problems[2]
    assert "also on line 2" in problems[3]
    assert "5 columns" in problems[4]


def test_an_empty_file_is_an_error() -> None:
    with pytest.raises(CsvError, match="no users"):
        parse_csv("name,groups\n\n")


def test_the_roster_name_must_be_a_resource_name() -> None:
    with pytest.raises(CliError, match="not a resource name"):
        roster_manifest("Course 2026", parse_csv("alice\n"))


def test_an_export_imports_again() -> None:
    users = [
        {"name": "bob", "groups": ["course-b", "course-a"]},
        {"name": "alice", "groups": []},
    ]
    text = export_csv(users, {"alice": {"email": "alice@example.org", "displayName": "Alice, A."}})
    assert text.splitlines()[0] == "name,groups,email,displayName"
    rows = parse_csv(text)
    assert [r.entry() for r in rows] == [
        {"name": "alice", "groups": [], "email": "alice@example.org", "displayName": "Alice, A."},
        {"name": "bob", "groups": ["course-a", "course-b"]},
    ]


def test_import_dry_run_prints_the_manifest_and_needs_no_hub(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    path = tmp_path / "people.csv"
    path.write_text("alice,course-a\n")
    assert main(["users", "import", str(path), "--roster", "course", "--dry-run"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["spec"]["users"] == [{"name": "alice", "groups": ["course-a"]}]


def test_import_of_a_bad_file_says_where_and_applies_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    path = tmp_path / "people.csv"
    path.write_text("alice,course-a\nAlice,x\n")
    assert main(["users", "import", str(path), "--roster", "course"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and "nothing was applied" in err
