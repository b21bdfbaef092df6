"""The session-hub leak report (tests/integration/leaks.py) names what a module added, only that."""

from tests.integration.leaks import report


def test_the_report_names_what_a_module_added_and_nothing_it_removed() -> None:
    before = {
        "resources": {("GroupPolicy", "base")},
        "group members": {("team", "ann")},
        "running servers": set(),
        "manifest files": {("base.yaml",)},
    }
    after = {
        "resources": {("GroupMembership", "team-b")},
        "group members": {("team", "ann"), ("empty", "")},
        "running servers": {("bob", "")},
        "manifest files": {("base.yaml",), ("team-b.yaml",)},
    }
    assert report("test_x", before, after) == (
        "test_x left on the session hub: resources: GroupMembership/team-b; group members: empty; "
        "running servers: bob; manifest files: team-b.yaml"
    )
    assert report("test_x", after, after) is None
