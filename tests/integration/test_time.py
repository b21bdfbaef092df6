"""The reconciler keeps time, on the real hub and labs: schedules on the second whatever the
resync interval, cron across a frozen reconciler, suspend, late joiners (`validFor`),
deadlines, retries that end (`backoffLimit`), and history deleted by TTL."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import docker
import pytest

from tests.harness import Hub, lab_queue, wait_for
from tests.helpers import apply, condition, events, finished, manifest, resource, status

IMAGE = "jhds-test-breakable:latest"  # the lab image under a name this module may break
EVERY_MINUTE = "* * * * *"


def reconciler_pid(hub: Hub) -> int:
    return hub.reconciler_details()["pid"]


def seconds_to_next_minute() -> float:
    now = datetime.now(UTC)
    return 60 - now.second - now.microsecond / 1e6


@pytest.fixture(scope="module")
def timed(engine: docker.DockerClient, own_platforms) -> Iterator[Hub]:
    """A platform whose resync is an hour away: anything on time here was on time by itself."""
    engine.images.get("jupyterhub-ds/lab:minimal").tag(IMAGE)
    env = {
        "RESYNC_SECONDS": "3600",
        "DOCKER_NOTEBOOK_IMAGE": IMAGE,
        "DOCKER_SPAWN_TIMEOUT": "15",
        "BROADCAST_DEADLINE": "6",
        "BROADCAST_ATTEMPT_TIMEOUT": "2",
    }
    try:
        hub = own_platforms.platform("time", env)
        hub.create_user("cora")
        hub.start_server("cora")
        lab_queue(hub, engine, "cora")  # start from an empty queue
        yield hub
    finally:
        with contextlib.suppress(docker.errors.APIError):
            engine.images.remove(IMAGE, force=True)


def test_an_at_broadcast_goes_out_within_a_second_of_its_time(timed: Hub, engine) -> None:
    at = datetime.now(UTC) + timedelta(seconds=8)
    apply(timed, "Broadcast", "at-on-time", {"message": "on time", "schedule": {"at": at.isoformat()}})
    done = wait_for(lambda: status(timed, "Broadcast", "at-on-time").get("phase") == "Completed" or None, 30, "sent")
    assert done
    run = status(timed, "Broadcast", "at-on-time")["runs"][0]
    lateness = (datetime.fromisoformat(run["startedAt"]) - at).total_seconds()
    print(f"at broadcast started {lateness:.3f} s after its time (RESYNC_SECONDS=3600)")
    assert 0 <= lateness < 1.0
    assert [n["message"] for n in lab_queue(timed, engine, "cora")] == ["on time"]


def test_cron_suspend_and_a_frozen_reconciler(timed: Hub, engine) -> None:
    """Every minute, two broadcasts in the same minutes: a suspended one sends nothing at a
    firing the other sends, nor across the freeze, and sends once resumed; across a 2-minute
    SIGSTOP covering two firings the other sends once on resume, not twice."""
    apply(timed, "Broadcast", "paused", {"message": "paused one", "schedule": {"cron": EVERY_MINUTE}, "suspend": True})
    apply(timed, "Broadcast", "minutely", {"message": "every minute", "schedule": {"cron": EVERY_MINUTE}})
    # The first firing (the next minute): the other one delivers, the suspended one does not.
    wait_for(lambda: events(timed, "Broadcast", "minutely", "Delivered"), 75, "the first firing delivered")
    assert events(timed, "Broadcast", "paused", "Delivered") == []
    ready = condition(status(timed, "Broadcast", "paused"))
    assert (ready["status"], ready["reason"]) == ("Unknown", "Suspended")

    # Frozen from just after that firing to 3 s after the second one after it: two missed.
    before = len(events(timed, "Broadcast", "minutely", "Delivered"))
    assert before == 1 and seconds_to_next_minute() > 5, before
    pid = reconciler_pid(timed)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(60 + seconds_to_next_minute() + 3)
    finally:
        os.kill(pid, signal.SIGCONT)
    # The two missed firings collapse into one run, within startingDeadlineSeconds (300 s).
    wait_for(lambda: len(events(timed, "Broadcast", "minutely", "Delivered")) > before, 15, "the catch-up run")
    # Resumed ~3 s after a minute began: the next regular firing is ~50 s away, so any other
    # run in the next 5 s would be the other missed firing, sent again.
    assert seconds_to_next_minute() > 10
    time.sleep(5)
    assert len(events(timed, "Broadcast", "minutely", "Delivered")) == before + 1
    assert events(timed, "Broadcast", "paused", "Delivered") == []  # suspended across it all

    r = timed.api(
        "POST",
        "manifests",
        data=manifest("Broadcast", "paused", {"message": "paused one", "schedule": {"cron": EVERY_MINUTE}}),
    )
    assert r.status_code == 200, r.text  # resumed
    wait_for(lambda: events(timed, "Broadcast", "paused", "Delivered"), 75, "the resumed one delivers")
    for name in ("paused", "minutely"):
        timed.api("DELETE", f"resources/broadcast/{name}")


def test_a_restart_whose_image_is_broken_ends_failed_after_its_backoff_limit(timed: Hub, engine) -> None:
    broken = io.BytesIO(b'FROM jupyterhub-ds/lab:minimal\nENTRYPOINT ["false"]\n')
    engine.images.build(fileobj=broken, tag=IMAGE, network_mode="none", rm=True)
    apply(timed, "ServerRestart", "broken-restart", {"user": "cora", "backoffLimit": 1})

    final = finished(timed, "ServerRestart", "broken-restart", timeout=150, interval=0.1)
    assert final["phase"] == "Failed" and final["failedAttempts"] == 2
    assert condition(final, "Stalled")["reason"] == "BackoffLimitExceeded"
    starts = events(timed, "ServerRestart", "broken-restart", "Starting")
    assert len(starts) == 1  # one stop/start sequence; its retries ended, nothing runs on
    time.sleep(5)
    assert status(timed, "ServerRestart", "broken-restart")["phase"] == "Failed"


# --- on the session's platform -------------------------------------------------------------


def test_a_late_joiner_gets_a_valid_for_broadcast_exactly_once(hub: Hub, engine) -> None:
    for user in ("lea", "leo"):
        hub.create_user(user)
    hub.start_server("lea")
    lab_queue(hub, engine, "lea")
    apply(
        hub,
        "Broadcast",
        "late-joiners",
        {"message": "still valid", "validFor": "5m", "targets": {"users": ["lea", "leo"]}},
    )
    wait_for(lambda: status(hub, "Broadcast", "late-joiners").get("phase") == "Active" or None, 30, "first run")
    assert status(hub, "Broadcast", "late-joiners")["validUntil"]
    sent_at = time.monotonic()
    assert [n["message"] for n in lab_queue(hub, engine, "lea")] == ["still valid"]
    # Leo starts 12 s after the broadcast: two looks for late joiners and a resync of the
    # session's hub (RESYNC_SECONDS=10) have passed without him.
    time.sleep(max(0.0, 12 - (time.monotonic() - sent_at)))
    hub.start_server("leo")

    def leo_has_it() -> list[dict]:
        return [n for n in lab_queue(hub, engine, "leo") if n["message"] == "still valid"]

    got = wait_for(leo_has_it, 20, "the late joiner's notice")
    assert len(got) == 1
    time.sleep(12)  # two more looks for late joiners: nobody gets it twice
    assert leo_has_it() == [] and lab_queue(hub, engine, "lea") == []
    assert len(events(hub, "Broadcast", "late-joiners", "LateDelivery")) == 1
    for user in ("lea", "leo"):
        hub.stop_server(user)


def test_a_reset_that_passes_its_deadline_never_runs(hub: Hub, engine) -> None:
    hub.create_user("dina")
    hub.start_server("dina")
    hub.exec(engine, "dina", "echo mine > /home/lab/.cache/c.txt")
    hub.stop_server("dina")
    pid = reconciler_pid(hub)
    os.kill(pid, signal.SIGSTOP)  # the reconciler is away when the request comes
    try:
        apply(hub, "VolumeReset", "late-reset", {"user": "dina", "volumes": ["cache"], "activeDeadlineSeconds": 2})
        time.sleep(4)
    finally:
        os.kill(pid, signal.SIGCONT)
    final = wait_for(lambda: status(hub, "VolumeReset", "late-reset").get("phase"), 15, "the reset's verdict")
    assert final == "Failed"
    s = status(hub, "VolumeReset", "late-reset")
    assert condition(s)["reason"] == "DeadlineExceeded"
    assert not s.get("resetVolumes")
    assert hub.volume_name("dina", "cache") in {v.name for v in engine.volumes.list()}  # untouched


def test_ttl_deletes_a_finished_resource_and_its_events(hub: Hub) -> None:
    hub.create_user("tilda")
    apply(
        hub,
        "Broadcast",
        "short-lived",
        {"message": "gone soon", "targets": {"users": ["tilda"]}, "ttlSecondsAfterFinished": 3},
    )
    wait_for(lambda: status(hub, "Broadcast", "short-lived").get("phase") == "Completed" or None, 30, "finished")
    assert events(hub, "Broadcast", "short-lived")
    wait_for(lambda: resource(hub, "Broadcast", "short-lived") is None, 15, "deleted by its TTL")
    assert events(hub, "Broadcast", "short-lived") == []
