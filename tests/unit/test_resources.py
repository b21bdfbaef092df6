"""Resource models: every kind, names, defaults, the spec hash, conditions and the schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from reconciler.api import REGISTRY, json_schema, kind_from_name, one_shot_kinds, parse_resource, spec_hash
from reconciler.api.broadcast import Broadcast
from reconciler.api.common import Condition, Status, get_condition, set_condition
from reconciler.api.groupmembership import GroupMembership, GroupMembershipStatus
from reconciler.api.serverrestart import ServerRestart
from reconciler.api.volumereset import VolumeReset
from reconciler.cron import standard_day_of_week
from reconciler.schedules import trigger_for
from vocabulary.api import API_VERSION


def doc(kind: str, spec: dict, name: str = "example", **extra: object) -> dict:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec, **extra}


def errors(data: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        parse_resource(data)
    return [(e["loc"][1:], e["msg"]) for e in info.value.errors()]


def test_kinds() -> None:
    assert set(REGISTRY) == {
        "Broadcast",
        "VolumeReset",
        "ServerRestart",
        "GroupMembership",
        "IdleCullPolicy",
        "GroupPolicy",
        "RolloutRestart",
        "VolumeBackup",
        "VolumeRestore",
        "BackupSchedule",
        "ServerStop",
        "UserRename",
        "Roster",
        "UserRemoval",
    }
    standing = {"GroupMembership", "IdleCullPolicy", "GroupPolicy", "BackupSchedule", "Roster"}
    assert set(REGISTRY) - standing == one_shot_kinds()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("groupmembership", "GroupMembership"),
        ("groupmemberships", "GroupMembership"),
        ("GroupMembership", "GroupMembership"),
        ("GROUPMEMBERSHIPS", "GroupMembership"),
        ("broadcasts", "Broadcast"),
        ("Broadcast", "Broadcast"),
        ("volumereset", "VolumeReset"),
        ("serverrestarts", "ServerRestart"),
    ],
)
def test_kind_from_name(text: str, kind: str) -> None:
    assert kind_from_name(text) == kind


def test_kind_from_name_unknown() -> None:
    with pytest.raises(ValueError, match=r"unknown kind 'pods'; known kinds: Broadcast, VolumeReset"):
        kind_from_name("pods")


def test_valid_group_membership() -> None:
    r = parse_resource(doc("GroupMembership", {"group": "docker-privileged", "members": ["admin", "eve.smith@x"]}))
    assert isinstance(r, GroupMembership)
    assert r.spec.group == "docker-privileged"
    assert r.spec.members == ["admin", "eve.smith@x"]
    assert r.spec.prune is False
    assert r.model_dump(mode="json")["spec"] == {
        "group": "docker-privileged",
        "members": ["admin", "eve.smith@x"],
        "prune": False,
        "suspend": False,
    }


def test_group_membership_rejects_uppercase_and_duplicate_members() -> None:
    [(loc, msg)] = errors(doc("GroupMembership", {"group": "g", "members": ["Alice"]}))
    assert loc == ("spec", "members", 0)
    assert "lowercase" in msg and "'alice'" in msg
    [(loc, msg)] = errors(doc("GroupMembership", {"group": "g", "members": ["a", "b", "a"]}))
    assert loc == ("spec", "members")
    assert "duplicates" in msg and "'a'" in msg
    [(loc, _)] = errors(doc("GroupMembership", {"group": "bad group"}))
    assert loc == ("spec", "group")
    [(loc, _)] = errors(doc("GroupMembership", {"group": "g", "prune": "yes"}))
    assert loc == ("spec", "prune")


def test_valid_broadcast_with_defaults() -> None:
    r = parse_resource(doc("Broadcast", {"message": "  Maintenance at 18:00  "}))
    assert isinstance(r, Broadcast)
    assert r.spec.message == "Maintenance at 18:00"  # trimmed
    assert r.spec.type == "info"
    assert r.spec.auto_close == 5000
    assert r.spec.dismiss_button is True
    assert r.spec.targets is None and r.spec.schedule is None
    dumped = r.model_dump(mode="json")["spec"]
    assert dumped["autoClose"] == 5000 and dumped["dismissButton"] is True


def test_broadcast_full() -> None:
    spec = {
        "message": "GPU node reboot",
        "type": "in-progress",
        "autoClose": False,
        "dismissButton": False,
        "targets": {"users": ["alice"], "groups": ["gpu-users"]},
        "schedule": {"at": "2026-12-01T10:00:00+01:00"},
    }
    r = parse_resource(doc("Broadcast", spec))
    assert r.spec.auto_close is False
    assert r.spec.targets.users == ["alice"] and r.spec.targets.groups == ["gpu-users"]
    assert r.spec.schedule.at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert r.model_dump(mode="json")["spec"]["schedule"]["at"] == "2026-12-01T09:00:00Z"


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("x" * 140, None),
        ("  " + "x" * 140 + "\n", None),  # trimmed before counting
        ("é" * 140, None),  # characters, not bytes
        ("x" * 141, "must be at most 140 characters (got 141)"),
        ("   ", "must not be empty"),
        ("", "must not be empty"),
    ],
)
def test_broadcast_message_length(message: str, problem: str | None) -> None:
    data = doc("Broadcast", {"message": message})
    if problem is None:
        assert parse_resource(data).spec.message == message.strip()
    else:
        [(loc, msg)] = errors(data)
        assert loc == ("spec", "message")
        assert problem in msg


@pytest.mark.parametrize("value", [True, -1, 1.5, "5000", None])
def test_broadcast_auto_close_rejects(value: object) -> None:
    [(loc, msg)] = errors(doc("Broadcast", {"message": "m", "autoClose": value}))
    assert loc == ("spec", "autoClose")
    assert "false or a number of milliseconds" in msg


@pytest.mark.parametrize("value", [False, 0, 10_000])
def test_broadcast_auto_close_accepts(value: object) -> None:
    got = parse_resource(doc("Broadcast", {"message": "m", "autoClose": value})).spec.auto_close
    assert got == value and type(got) is type(value)


def test_broadcast_targets_must_not_be_empty() -> None:
    [(loc, msg)] = errors(doc("Broadcast", {"message": "m", "targets": {}}))
    assert loc == ("spec", "targets")
    assert "at least one of users or groups" in msg


@pytest.mark.parametrize(
    "schedule",
    [
        {"at": "2026-12-01T09:00:00Z"},
        {"at": datetime(2026, 12, 1, 9, tzinfo=UTC)},
        {"cron": "0 9 * * mon-fri"},
        {"cron": "*/15 8-18 * * 1-5"},
        {"cron": "30 6 1,15 jan,jul *"},
        {"cron": "0 0 * * 7"},
    ],
)
def test_schedule_valid(schedule: dict) -> None:
    parse_resource(doc("Broadcast", {"message": "m", "schedule": schedule}))


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ({"at": "2026-12-01T09:00:00"}, "timezone"),
        ({"at": datetime(2026, 12, 1, 9)}, "timezone"),
        ({"at": 1700000000}, "RFC 3339"),
        ({"at": "tomorrow"}, "datetime"),
        ({}, "exactly one"),
        ({"at": "2026-12-01T09:00:00Z", "cron": "0 9 * * *"}, "exactly one"),
        ({"cron": "0 9 * *"}, "5-field"),
        ({"cron": "0 9 * * * *"}, "5-field"),
        ({"cron": "60 9 * * *"}, "invalid cron expression '60 9 * * *'"),
        ({"cron": "0 24 * * *"}, "invalid cron expression"),
        ({"cron": "0 9 * 13 *"}, "invalid cron expression"),
        ({"cron": "*/0 * * * *"}, "invalid cron expression"),
        ({"cron": "0 9 L X *"}, "invalid cron expression"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        # What APScheduler, which fires it, cannot take or never fires is refused here too.
        ({"cron": "0 0 30 2 mon"}, "never fires"),  # both day fields must match
        ({"cron": "0 9 L * *"}, "day-of-month"),
        ({"cron": "0 9 * * 8"}, "day-of-week: day 8 is not 0-7"),
        ({"cron": "0 9 * * monday"}, "unknown day 'monday'"),
        ({"cron": "0 9 * * fri-sun"}, "runs backwards"),
        ({"cron": "0 9 * * 1,,2"}, "day-of-week"),
        ({"cron": "@daily"}, "5-field"),
    ],
)
def test_schedule_invalid(schedule: dict, fragment: str) -> None:
    [(loc, msg)] = errors(doc("Broadcast", {"message": "m", "schedule": schedule}))
    assert loc[:2] == ("spec", "schedule")
    assert fragment in msg


def test_cron_triggers_follow_standard_cron() -> None:
    after = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)  # a Friday

    def next_cron_time(expr: str, after: datetime) -> datetime:
        return trigger_for(expr, None).get_next_fire_time(None, after + timedelta(seconds=1))

    assert next_cron_time("0 9 * * mon-fri", after) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert next_cron_time("*/20 * * * *", after) == datetime(2026, 11, 27, 9, 40, tzinfo=UTC)
    assert next_cron_time("0 0 * * 7", after) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 7 = Sunday
    # Numbers mean what they mean in cron (0 = Sunday), not APScheduler's (0 = Monday).
    assert next_cron_time("0 0 * * 0", after) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert next_cron_time("0 9 * * 1-5", after) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert next_cron_time("0 9 * * 6", after) == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)  # Saturday
    assert standard_day_of_week("*/2") == "sun,tue,thu,sat"
    assert standard_day_of_week("5-7") == "sun,fri,sat"
    assert standard_day_of_week("7") == standard_day_of_week("0") == "sun"
    assert standard_day_of_week("MON-wed/2") == "mon,wed"


def test_valid_volume_reset() -> None:
    r = parse_resource(doc("VolumeReset", {"user": "alice", "volumes": ["home", "cache"]}))
    assert isinstance(r, VolumeReset)
    assert r.spec.volumes == ["home", "cache"]


@pytest.mark.parametrize(
    ("spec", "loc", "fragment"),
    [
        ({"user": "alice", "volumes": []}, ("spec", "volumes"), "at least one"),
        ({"user": "alice", "volumes": ["home", "home"]}, ("spec", "volumes"), "duplicates"),
        ({"user": "alice", "volumes": ["Home"]}, ("spec", "volumes", 0), "volume key"),
        ({"volumes": ["home"]}, ("spec", "user"), "Field required"),
        ({"user": "a/b", "volumes": ["home"]}, ("spec", "user"), "not a valid username"),
    ],
)
def test_volume_reset_invalid(spec: dict, loc: tuple, fragment: str) -> None:
    [(got_loc, msg)] = errors(doc("VolumeReset", spec))
    assert got_loc == loc
    assert fragment in msg


def test_valid_server_restart() -> None:
    r = parse_resource(doc("ServerRestart", {"user": "alice"}))
    assert isinstance(r, ServerRestart)
    assert r.spec.server == ""
    assert parse_resource(doc("ServerRestart", {"user": "alice", "server": "gpu-box"})).spec.server == "gpu-box"
    [(loc, _)] = errors(doc("ServerRestart", {"user": "alice", "server": "a/b"}))
    assert loc == ("spec", "server")


@pytest.mark.parametrize("name", ["a", "maintenance-2026-12-01", "x" * 63, "0abc"])
def test_good_names(name: str) -> None:
    assert parse_resource(doc("ServerRestart", {"user": "a"}, name=name)).metadata.name == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Maint", "DNS-1123"),
        ("-a", "DNS-1123"),
        ("a-", "DNS-1123"),
        ("a_b", "DNS-1123"),
        ("a.b", "DNS-1123"),
        ("", "DNS-1123"),
        ("x" * 64, "at most 63 characters (got 64)"),
    ],
)
def test_bad_names(name: str, fragment: str) -> None:
    [(loc, msg)] = errors(doc("ServerRestart", {"user": "a"}, name=name))
    assert loc == ("metadata", "name")
    assert fragment in msg


def test_envelope_strictness() -> None:
    with pytest.raises(ValidationError, match="unsupported apiVersion 'v1'"):
        parse_resource({**doc("ServerRestart", {"user": "a"}), "apiVersion": "v1"})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_resource(doc("Pod", {}))
    [(loc, _)] = errors({**doc("ServerRestart", {"user": "a"}), "extra": 1})
    assert loc == ("extra",)
    # Manifests use the YAML names only: the Python names are unknown fields there.
    [(loc, _)] = errors(doc("Broadcast", {"message": "m", "auto_close": 0}))
    assert loc == ("spec", "auto_close")
    # ... while Python code may use either.
    assert Broadcast.model_validate(doc("Broadcast", {"message": "m", "auto_close": 0})).spec.auto_close == 0


def test_status_is_accepted_and_ignored() -> None:
    data = doc("ServerRestart", {"user": "a"}, status={"phase": "Succeeded", "observedGeneration": 3})
    assert parse_resource(data).status is None
    assert parse_resource(data, keep_status=True).status == {"phase": "Succeeded", "observedGeneration": 3}


def test_spec_hash_is_stable_under_key_order_and_defaults() -> None:
    a = parse_resource(doc("Broadcast", {"message": "hello", "type": "info", "autoClose": 5000}))
    b = parse_resource(
        {"spec": {"autoClose": 5000, "message": "hello"}, "metadata": {"name": "other"}, "kind": "Broadcast",
         "apiVersion": API_VERSION}
    )  # fmt: skip
    c = parse_resource(doc("Broadcast", {"message": "  hello "}))
    d = parse_resource(doc("Broadcast", {"message": "hello", "dismissButton": True, "targets": None}))
    assert spec_hash(a) == spec_hash(b) == spec_hash(c) == spec_hash(d)
    assert len(spec_hash(a)) == 16 and int(spec_hash(a), 16) >= 0
    assert spec_hash(a) == spec_hash(a.spec)
    changed = parse_resource(doc("Broadcast", {"message": "hello", "autoClose": 0}))
    assert spec_hash(changed) != spec_hash(a)
    gm1 = parse_resource(doc("GroupMembership", {"group": "g", "members": ["a"]}))
    gm2 = parse_resource(doc("GroupMembership", {"members": ["a"], "prune": False, "group": "g"}))
    assert spec_hash(gm1) == spec_hash(gm2)
    # Same instant in another timezone: same hash (times are stored in UTC).
    at1 = parse_resource(doc("Broadcast", {"message": "m", "schedule": {"at": "2026-12-01T10:00:00+01:00"}}))
    at2 = parse_resource(doc("Broadcast", {"message": "m", "schedule": {"at": "2026-12-01T09:00:00Z"}}))
    assert spec_hash(at1) == spec_hash(at2)


def test_round_trip_by_alias() -> None:
    r = parse_resource(
        doc("Broadcast", {"message": "m", "targets": {"groups": ["g"]}, "schedule": {"cron": "0 9 * * *"}})
    )
    again = parse_resource(r.model_dump(mode="json"))
    assert again == r
    assert r.model_dump(mode="json")["apiVersion"] == API_VERSION  # by alias


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1, t2 = t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)
    conditions = set_condition([], "Ready", "False", "Progressing", "adding members", t0)
    assert conditions[0].last_transition_time == t0
    conditions = set_condition(conditions, "Ready", "False", "UserNotFound", "no user 'bob'", t1)
    assert conditions[0].last_transition_time == t0  # same status: time kept, reason/message updated
    assert (conditions[0].reason, conditions[0].message) == ("UserNotFound", "no user 'bob'")
    conditions = set_condition(conditions, "Stalled", "True", "UserNotFound", "", t1)
    conditions2 = set_condition(conditions, "Ready", "True", "Reconciled", "", t2)
    assert [c.type for c in conditions2] == ["Ready", "Stalled"]
    assert get_condition(conditions2, "Ready").last_transition_time == t2
    assert get_condition(conditions, "Ready").status == "False"  # the input list is not changed
    assert get_condition(conditions2, "Missing") is None


def test_condition_and_status_models() -> None:
    c = Condition(
        type="Ready", status="True", reason="Reconciled", last_transition_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert c.model_dump(mode="json") == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    with pytest.raises(ValidationError):
        Condition(type="Ready", status="Yes", reason="Reconciled", last_transition_time=c.last_transition_time)
    with pytest.raises(ValidationError):
        Condition(type="Ready", status="True", reason="not camel", last_transition_time=c.last_transition_time)
    with pytest.raises(ValidationError):  # naive times are a bug
        Condition(type="Ready", status="True", reason="Ok", last_transition_time=datetime(2026, 1, 1))
    s = Status.model_validate({"phase": "Ready", "observedGeneration": 2, "conditions": [c.model_dump(mode="json")]})
    assert s.observed_generation == 2 and s.conditions == [c]
    dumped = s.model_dump(mode="json")
    assert dumped["observedGeneration"] == 2
    assert Status().dump() == {"conditions": []}
    # A status field no model declares is an error where it is written...
    with pytest.raises(ValidationError):
        Status.model_validate({"phase": "Ready", "added": ["bob"]})
    with pytest.raises(ValidationError):
        GroupMembershipStatus(phase="Ready", memebrs=["bob"])
    with pytest.raises(ValidationError):  # a phase nobody defined
        Status(phase="Finished")
    # ...while one written by an older version is left out when read back.
    assert Status.load({"phase": "Ready", "requeueAfter": 3.0}).dump() == {"phase": "Ready", "conditions": []}


def test_json_schema() -> None:
    schema = json_schema()
    assert schema["$id"] and schema["title"]
    json.dumps(schema)  # serializable
    text = json.dumps(schema)
    for kind in REGISTRY:
        assert f'"{kind}Spec"' in text
    broadcast = schema["$defs"]["BroadcastSpec"]
    assert broadcast["additionalProperties"] is False
    assert set(broadcast["properties"]) == {
        "message",
        "type",
        "autoClose",
        "dismissButton",
        "targets",
        "schedule",
        "validFor",
        "suspend",
        "startingDeadlineSeconds",
        "concurrencyPolicy",
        "successfulRunsHistoryLimit",
        "failedRunsHistoryLimit",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    }
    assert schema["$defs"]["Metadata"]["properties"]["name"]["pattern"] == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def test_job_and_schedule_fields() -> None:
    doc = {"apiVersion": API_VERSION, "kind": "VolumeReset", "metadata": {"name": "r"}}
    r = parse_resource({**doc, "spec": {"user": "sam", "volumes": ["cache"]}})
    assert (r.spec.active_deadline_seconds, r.spec.backoff_limit, r.spec.ttl_seconds_after_finished) == (
        None,
        6,
        604800,
    )
    r = parse_resource({**doc, "spec": {"user": "sam", "volumes": ["cache"], "activeDeadlineSeconds": 300}})
    assert r.spec.active_deadline_seconds == 300
    b = {"apiVersion": API_VERSION, "kind": "Broadcast", "metadata": {"name": "b"}}
    for text, seconds in (("90s", 90), ("5m", 300), ("2h", 7200), ("1d12h", 129600), (600, 600)):
        assert parse_resource({**b, "spec": {"message": "m", "validFor": text}}).spec.valid_for == seconds
    for bad in ("soon", "5 minutes", "0s", -5, True):
        with pytest.raises(ValidationError):
            parse_resource({**b, "spec": {"message": "m", "validFor": bad}})
    with pytest.raises(ValidationError, match="startingDeadlineSeconds"):
        parse_resource({**b, "spec": {"message": "m", "schedule": {"cron": "* * * * *"}, "activeDeadlineSeconds": 9}})
    with pytest.raises(ValidationError):
        parse_resource({**b, "spec": {"message": "m", "concurrencyPolicy": "Replace"}})
