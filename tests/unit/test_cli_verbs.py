"""hubctl's suspend, resume, reconcile, wait and get -w: the pure parts (--for, durations,
KIND/NAME, what a watch prints), then the verbs against a fake hub on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler import cli
from reconciler.cli import operations
from reconciler.cli.client import CliError
from reconciler.cli.main import split_ref
from reconciler.cli.operations import watch_line, watch_state
from reconciler.waiting import WaitFor, handled, parse_for
from vocabulary.durations import parse_duration

REQUESTED = "2030-01-01T12:00:00.123456Z"


def manifest(phase: str | None = None, ready: str | None = None, generation: int = 1, observed: int | None = 1, **st):
    status: dict[str, Any] = {**({"phase": phase} if phase else {}), **st}
    if observed is not None:
        status["observedGeneration"] = observed
    if ready:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "reason": "Reconciled", "message": "", "lastTransitionTime": REQUESTED}
        ]
    return {
        "apiVersion": "jupyterhub-ds/v1",
        "kind": "GroupMembership",
        "metadata": {"name": "team-a", "generation": generation, "annotations": {"jupyterhub-ds/owner": "cli"}},
        "spec": {"group": "team-a", "members": []},
        "status": status,
    }


# --- --for ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("condition=Ready", WaitFor("condition", "Ready", "True")),
        ("condition=Ready=False", WaitFor("condition", "Ready", "False")),
        ("condition=Ready=unknown", WaitFor("condition", "Ready", "Unknown")),
        ("phase=Completed", WaitFor("phase", "Completed")),
        ("delete", WaitFor("delete")),
    ],
)
def test_for_forms(text: str, want: WaitFor) -> None:
    assert parse_for(text) == want
    assert parse_for(str(want)) == want  # printed as typed


@pytest.mark.parametrize(
    "text", ["", "ready", "condition", "condition=", "condition=Ready=maybe", "condition=Ready=", "phase=", "delete=x"]
)
def test_bad_for_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"condition=<Type>.*phase=<Phase>.*delete"):
        parse_for(text)


def test_a_condition_or_phase_counts_only_for_the_current_generation() -> None:
    ready = parse_for("condition=Ready")
    assert ready.holds(manifest("Ready", "True"))
    assert parse_for("condition=ready").holds(manifest("Ready", "True"))  # types as kubectl: any case
    assert not ready.holds(manifest("Ready", "True", generation=2, observed=1))  # an older spec's status
    assert not ready.holds(manifest("Degraded", "False"))
    assert parse_for("condition=Ready=False").holds(manifest("Degraded", "False"))
    assert not ready.holds(manifest(observed=None))
    assert not ready.holds(None)
    assert parse_for("phase=Ready").holds(manifest("Ready"))
    assert not parse_for("phase=Completed").holds(manifest("Ready"))
    assert parse_for("delete").holds(None)
    assert not parse_for("delete").holds(manifest("Ready"))


def failed(generation: int = 1, observed: int = 1) -> dict[str, Any]:
    m = manifest("Failed", "False", generation=generation, observed=observed)
    m["status"]["conditions"][0].update(reason="NotRunning", message="alice's default server is not running")
    return m


def test_a_finished_one_shot_never_gets_another_phase_or_condition() -> None:
    never = parse_for("phase=Succeeded").never(failed())
    why = "NotRunning: alice's default server is not running"
    assert never == f"it ended Failed ({why}), so phase=Succeeded will not hold"
    assert parse_for("condition=Ready").never(failed()) is not None
    assert parse_for("condition=Ready=False").never(failed()) is None  # it holds
    assert parse_for("phase=Failed").never(failed()) is None
    assert parse_for("phase=Failed").never(manifest("Succeeded")) == "it ended Succeeded, so phase=Failed will not hold"
    assert parse_for("phase=Succeeded").never(failed(generation=2, observed=1)) is None  # a new spec: may still
    assert parse_for("phase=Succeeded").never(manifest("Running")) is None
    assert parse_for("phase=Ready").never(manifest("Stalled", "False")) is None  # a standing one may recover
    assert parse_for("delete").never(failed()) is None  # ttlSecondsAfterFinished may delete it
    assert parse_for("phase=Succeeded").never(None) is None


# --- durations, references, reconcile requests ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("60", 60),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("2.5s", 2.5),
        ("1d12h", 129600),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "-5s", "5 m", "1w", "m5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(text)


def test_kind_slash_name_or_kind_name() -> None:
    assert split_ref("groupmembership/team-a", None) == ("groupmembership", "team-a")
    assert split_ref("groupmembership", "team-a") == ("groupmembership", "team-a")
    assert split_ref("groupmembership", None) == ("groupmembership", None)
    for kind, name in [("gm/a", "b"), ("gm/", None), ("/a", None), ("gm/a/b", None)]:
        with pytest.raises(CliError):
            split_ref(kind, name)


def test_a_request_is_handled_by_its_own_answer_or_a_later_one() -> None:
    assert handled({"lastHandledReconcileAt": REQUESTED}, REQUESTED)
    assert handled({"lastHandledReconcileAt": "2030-01-01T12:00:01Z"}, REQUESTED)
    assert not handled({"lastHandledReconcileAt": "2030-01-01T12:00:00Z"}, REQUESTED)  # earlier
    assert not handled({}, REQUESTED)
    assert not handled({"lastHandledReconcileAt": "garbage"}, REQUESTED)


def test_watch_sees_phase_conditions_and_counts_change() -> None:
    a = manifest("Delivering", "False", currentRun={"id": "r1", "total": 3, "counts": {"delivered": 1}})
    b = manifest("Delivering", "False", currentRun={"id": "r1", "total": 3, "counts": {"delivered": 2}})
    assert watch_state(a) == watch_state(json.loads(json.dumps(a)))
    assert watch_state(a) != watch_state(b)
    assert watch_state(manifest("Ready", "True")) != watch_state(manifest("Ready", "False"))
    line = watch_line(b)
    assert "groupmembership/team-a  Delivering  Ready=False/Reconciled" in line
    assert line.endswith("delivered=2 total=3")


# --- the verbs against a fake hub -------------------------------------------------------------
class FakeHub:
    """The resource API of one GroupMembership; `script` changes it at each GET."""

    def __init__(self) -> None:
        self.resource: dict[str, Any] | None = manifest()
        self.calls: list[tuple[str, str]] = []
        self.script: Callable[[int], None] = lambda n: None
        self.gets = 0

    def handle(self, method: str, path: str) -> tuple[int, Any]:
        self.calls.append((method, path))
        parts = path.split("?")[0].removeprefix("/hub/api/resources/").split("/")
        if parts[0] != "GroupMembership" or self.resource is None or parts[1] != "team-a":
            return 404, {"status": 404, "message": "not found"}
        if method == "GET" and parts[2:] == ["events"]:
            return 200, {"items": []}
        if method == "GET":
            self.gets += 1
            self.script(self.gets)
            return (200, self.resource) if self.resource is not None else (404, {"message": "not found"})
        if parts[2:] in (["suspend"], ["resume"]):
            self.resource["spec"]["suspend"] = parts[2] == "suspend"
            return 200, self.resource
        if parts[2:] == ["reconcile"]:
            return 202, {"requested": REQUESTED}
        return 405, {"message": "no"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHub, list[str]]]:
    hub = FakeHub()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            status, body = hub.handle(self.command, self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    monkeypatch.setattr(operations, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(operations, "WATCH_SECONDS", 0.01)
    yield hub, ["--url", f"http://127.0.0.1:{server.server_port}", "--token", "t"]
    server.shutdown()
    server.server_close()


def test_wait_until_ready_then_exit_0(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    hub.script = lambda n: n == 3 and hub.resource.update(manifest("Ready", "True"))
    assert cli.main([*conn, "wait", "groupmemberships/team-a", "--for=condition=Ready", "--timeout=5s"]) == 0
    assert capsys.readouterr().out == "groupmembership/team-a condition met\n"
    assert hub.gets == 3
    assert hub.calls[0] == ("GET", "/hub/api/resources/GroupMembership/team-a")


def test_wait_times_out_with_exit_1(fake, capsys: pytest.CaptureFixture[str]) -> None:
    _hub, conn = fake
    assert cli.main([*conn, "wait", "groupmembership", "team-a", "--for", "phase=Nope", "--timeout", "0.2"]) == 1
    assert "timed out after 0.2s waiting for phase=Nope on groupmembership/team-a" in capsys.readouterr().err


def test_wait_on_a_one_shot_that_ended_otherwise_exits_1_at_once(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    hub.script = lambda n: n == 2 and hub.resource.update(failed())
    started = time.monotonic()
    assert cli.main([*conn, "wait", "groupmembership/team-a", "--for=phase=Succeeded", "--timeout=60s"]) == 1
    assert time.monotonic() - started < 10 and hub.gets == 2
    err = capsys.readouterr().err
    assert "groupmembership/team-a: it ended Failed (NotRunning: " in err and "phase=Succeeded will not hold" in err


def test_wait_for_delete(fake) -> None:
    hub, conn = fake
    hub.script = lambda n: n == 2 and setattr(hub, "resource", None)
    assert cli.main([*conn, "wait", "groupmembership/team-a", "--for=delete", "--timeout=5s"]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["wait", "groupmembership/team-a", "--for=ready"],
        ["wait", "groupmembership/team-a", "--for=delete", "--timeout=soon"],
        ["wait", "groupmembership/team-a"],
    ],
)
def test_wait_usage_errors_exit_2(fake, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([*fake[1], *argv])
    assert e.value.code == 2


def test_a_missing_name_or_both_forms_is_a_usage_error(fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*fake[1], "wait", "groupmembership", "--for=delete"]) == 2
    assert cli.main([*fake[1], "describe", "groupmembership"]) == 2
    assert cli.main([*fake[1], "suspend", "groupmembership/team-a", "team-a"]) == 2
    assert cli.main([*fake[1], "suspend", "nokind/team-a"]) == 2
    assert "unknown kind 'nokind'" in capsys.readouterr().err


def test_suspend_and_resume(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    assert cli.main([*conn, "suspend", "groupmembership/team-a"]) == 0
    assert hub.resource["spec"]["suspend"] is True
    assert cli.main([*conn, "resume", "GroupMembership", "team-a"]) == 0
    assert hub.resource["spec"]["suspend"] is False
    assert capsys.readouterr().out == "groupmembership/team-a suspended\ngroupmembership/team-a resumed\n"
    assert cli.main([*conn, "suspend", "groupmembership/other"]) == 1  # 404


def test_reconcile_waits_for_the_status_to_answer(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    hub.script = lambda n: n == 2 and hub.resource["status"].update(lastHandledReconcileAt=REQUESTED)
    assert cli.main([*conn, "reconcile", "groupmembership/team-a", "--with-source"]) == 0
    assert hub.calls[0] == ("POST", "/hub/api/resources/GroupMembership/team-a/reconcile?withSource=true")
    out = capsys.readouterr().out
    assert f"reconcile requested at {REQUESTED}" in out and f"reconciled at {REQUESTED}" in out


def test_reconcile_not_handled_in_time_is_exit_1(fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*fake[1], "reconcile", "groupmembership/team-a", "--timeout", "200ms"]) == 1
    assert f"the request of {REQUESTED} was not handled within 0.2s" in capsys.readouterr().err


def test_get_watch_prints_changes_until_a_terminal_phase(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    states = {1: ("Running", "False"), 2: ("Running", "False"), 3: ("Running", "Unknown"), 5: ("Succeeded", "True")}
    hub.script = lambda n: n in states and hub.resource.update(manifest(*states[n]))
    assert cli.main([*conn, "get", "groupmembership", "team-a", "-w"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[2:4] for line in lines] == [
        ["Running", "Ready=False/Reconciled"],
        ["Running", "Ready=Unknown/Reconciled"],
        ["Succeeded", "Ready=True/Reconciled"],
    ]


def test_get_watch_ends_when_the_resource_is_deleted(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    hub.script = lambda n: n == 3 and setattr(hub, "resource", None)
    assert cli.main([*conn, "get", "groupmembership/team-a", "--watch"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("groupmembership/team-a  deleted")
    assert cli.main([*conn, "get", "groupmembership", "-w"]) == 2  # needs a NAME


def test_no_hub_is_exit_2() -> None:
    assert cli.main(["--url", "http://127.0.0.1:9", "--token", "t", "wait", "groupmembership/x", "--for=delete"]) == 2


def test_events_and_describe_take_kind_slash_name(fake, capsys: pytest.CaptureFixture[str]) -> None:
    hub, conn = fake
    assert cli.main([*conn, "events", "groupmembership/team-a"]) == 0
    assert hub.calls[-1] == ("GET", "/hub/api/resources/GroupMembership/team-a/events?limit=100")
    assert cli.main([*conn, "describe", "groupmembership/team-a"]) == 0
    assert "Name:          team-a" in capsys.readouterr().out


def test_describe_shows_a_kinds_status_lists_as_its_tables() -> None:
    from reconciler.api import REGISTRY

    (servers,) = REGISTRY["IdleCullPolicy"].details
    entry = {"user": "ann", "idleSeconds": 125, "deadline": "10:00", "reason": "maxAge", "state": "Warned"}
    assert servers.rows([entry]) == [
        ["USER", "SERVER", "IDLE", "DEADLINE", "STATE", "NOTE"],
        ["ann", "-", "2m5s", "10:00 (maxAge)", "Warned", ""],
    ]
