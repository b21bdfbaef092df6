"""Roster on the session's platform (issue 27): 50 people in 2 groups exist, are approved and
in their groups; their one-time passwords are read once; one signs in with theirs, gets no
server until they set their own, and must
set their own; one with a running server and a file is removed with `removal: backup`: the
backup is verified against the archive itself, their volumes are gone, they cannot sign in
or up; the status and events say what was done to each. Deleting with care: `hubctl delete
user` (a UserRemoval) and JupyterHub's own admin delete (caught: an event names the volumes
kept). The module removes all it made (users, groups, volumes, backups, records).
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from urllib.parse import quote

import docker
import pytest
import requests

from tests.harness import Hub, wait_for
from tests.helpers import apply, events, group_members, status
from vocabulary import naming

ROSTER = "rs-course"
GROUPS = ("rs-g1", "rs-g2")
PEOPLE = [f"rs-u{i:02d}" for i in range(50)]
LEAVER, SIGNER = "rs-u01", "rs-u00"
SOLO, LONER = "rs-solo", "rs-loner"  # not on the roster: deleted by hubctl, and by JupyterHub's admin
OPEN, NOPW = "rs-open", "rs-nopw"  # a roster with `passwords: none`: its people sign up
IMPORTED, IMPORTS, IMP_GROUP = "rs-imported", ("rs-imp-a", "rs-imp-b"), "rs-imp"  # `hubctl users import`
BASE_IMAGE = "jupyterhub-ds/base:bookworm"
NEW_PASSWORD = "my-own-long-passphrase-42"


def spec(people: list[str], removal: str = "backup") -> dict:
    users = [{"name": n, "groups": [GROUPS[i % 2]], "email": f"{n}@example.org"} for i, n in enumerate(people)]
    return {"users": users, "removal": removal, "passwords": "oneTime"}


def db(hub: Hub) -> sqlite3.Connection:
    return sqlite3.connect(hub.state_dir / "jupyterhub.sqlite")


def approved(hub: Hub) -> set[str]:
    with db(hub) as c:
        return {n for (n,) in c.execute("select username from users_info where is_authorized and username like 'rs-%'")}


def person(st: dict, name: str) -> dict:
    return next((p for p in st.get("people", []) if p["name"] == name), {})


def backup_volume(hub: Hub) -> str:
    return f"{hub.platform}-backups"


@pytest.fixture(scope="module")
def course(hub: Hub, engine: docker.DockerClient) -> Iterator[None]:
    try:
        yield
    finally:
        # Everyone leaves through the platform (removal: delete), then what is left goes.
        apply(hub, "Roster", ROSTER, spec([], removal="delete"))
        if status(hub, "Roster", OPEN):
            apply(hub, "Roster", OPEN, {"users": [], "passwords": "none", "removal": "delete"})
        if status(hub, "Roster", IMPORTED):
            apply(hub, "Roster", IMPORTED, {"users": [], "removal": "delete"})
        listed = {*PEOPLE, NOPW, *IMPORTS}
        wait_for(lambda: not {u["name"] for u in hub.api("GET", "users").json()} & listed, 120, "all removed")
        backups = {p.get("backup") for p in status(hub, "Roster", ROSTER).get("people", []) if p.get("backup")}
        for roster in (ROSTER, OPEN, IMPORTED):
            hub.api("DELETE", f"resources/roster/{roster}")
        for name in backups:
            hub.api("DELETE", f"resources/volumebackup/{name}")
            engine.containers.run(
                BASE_IMAGE, ["rm", "-rf", f"/b/{name}"], volumes={backup_volume(hub): {"bind": "/b"}}, remove=True
            )
        for user in (SOLO, LONER):
            hub.api("DELETE", f"users/{user}")
        for group in (*GROUPS, IMP_GROUP):
            hub.api("DELETE", f"groups/{group}")
        for v in engine.volumes.list(filters={"name": f"{hub.platform}-rs-"}):
            v.remove(force=True)
        with db(hub) as c:
            c.execute("delete from jhds_accounts where username like 'rs-%'")
            c.execute("delete from users_info where username like 'rs-%'")
        # nothing of it is left for the modules after it on this hub
        assert not [u for u in hub.api("GET", "users").json() if u["name"].startswith("rs-")]
        assert not [g for g in hub.api("GET", "groups").json() if g["name"].startswith("rs-")]
        assert not engine.volumes.list(filters={"name": f"{hub.platform}-rs-"})
        stored = {b["metadata"]["name"] for b in hub.api("GET", "resources/volumebackup").json()["items"]}
        on_disk = engine.containers.run(
            BASE_IMAGE, ["ls", "/b"], volumes={backup_volume(hub): {"bind": "/b"}}, remove=True
        )
        assert not backups & (stored | set(on_disk.decode().split()))


def test_1_a_roster_of_50_in_2_groups(hub: Hub, course: None) -> None:
    apply(hub, "Roster", ROSTER, spec(PEOPLE))
    st = wait_for(lambda: (s := status(hub, "Roster", ROSTER)).get("phase") == "Ready" and s, 60, "the roster Ready")
    assert st["existing"] == 50 and st["users"] == 50 and st["groups"] == list(GROUPS)
    names = {u["name"] for u in hub.api("GET", "users").json()}
    assert set(PEOPLE) <= names and approved(hub) >= set(PEOPLE)
    assert group_members(hub, GROUPS[0]) == set(PEOPLE[0::2]) and group_members(hub, GROUPS[1]) == set(PEOPLE[1::2])
    assert person(st, "rs-u07")["did"] == ["created", "one-time password made", f"added to {GROUPS[1]}"]
    assert sorted(st["pending"]["passwordNotRead"]) == PEOPLE
    reasons = {e["reason"] for e in events(hub, "Roster", ROSTER)}
    assert {"UsersCreated", "PasswordsMade", "GroupCreated", "MembersAdded"} <= reasons


def test_2_passwords_are_read_once_and_the_first_login_must_change_it(hub: Hub, course: None) -> None:
    result = hub.hubctl("roster", "passwords", ROSTER, "-o", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(r["user"] for r in rows) == PEOPLE and all(len(r["password"]) >= 20 for r in rows)
    said = str(status(hub, "Roster", ROSTER)) + str(events(hub, "Roster", ROSTER)) + hub.log_path.read_text()
    assert not [r["user"] for r in rows if r["password"] in said]  # never in the status, events or log
    again = hub.hubctl("roster", "passwords", ROSTER, "-o", "csv")
    assert again.returncode == 0 and again.stdout.strip() == "user,password"  # once only
    wait_for(lambda: "passwordNotRead" not in status(hub, "Roster", ROSTER).get("pending", {}), 30, "none pending")
    password = next(r["password"] for r in rows if r["user"] == SIGNER)

    def login(pw: str) -> requests.Response:
        s = requests.Session()
        return hub._form(s, "login", {"username": SIGNER, "password": pw})

    for _ in range(2):  # every login with it, until changed
        r = login(password)
        assert r.status_code == 302 and r.headers["Location"].endswith("/hub/change-password"), r.headers
    refused = hub.api("POST", f"users/{SIGNER}/server")  # no lab until the password is their own
    assert refused.status_code == 403 and "one-time password" in refused.json()["message"], refused.text
    assert not hub.api("GET", f"users/{SIGNER}").json()["servers"]
    s = requests.Session()
    assert hub._form(s, "login", {"username": SIGNER, "password": password}).status_code == 302
    form = {"old_password": password, "new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}
    changed = hub._form(s, "change-password", form)
    assert changed.status_code == 200 and "changed successfully" in changed.text
    r = login(NEW_PASSWORD)
    assert r.status_code == 302 and "change-password" not in r.headers["Location"]
    assert login(password).status_code == 200  # the one-time password is gone


def test_3_removed_with_backup(hub: Hub, engine: docker.DockerClient, admin_session, course: None) -> None:
    # An admin sets the leaver's password (NativeAuthenticator's admin page): with the
    # one-time one still in place, no server starts.
    form = {"new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}
    changed = hub._form(admin_session, f"change-password/{LEAVER}", form)
    assert changed.status_code == 200 and "changed" in changed.text, changed.text[-300:]
    hub.start_server(LEAVER)
    hub.exec(engine, LEAVER, "echo kept-by-the-backup > ~/notes.txt")
    volumes = {v.name for v in engine.volumes.list(filters={"name": hub.volume_name(LEAVER, "")})}
    assert volumes, "the lab made the leaver's volumes"
    apply(hub, "Roster", ROSTER, spec([p for p in PEOPLE if p != LEAVER]))

    def removed() -> dict:
        st = status(hub, "Roster", ROSTER)
        return st if person(st, LEAVER).get("step") == "done" else {}

    st = wait_for(removed, 180, f"{LEAVER} removed", interval=0.5)
    leaver = person(st, LEAVER)
    did = " | ".join(leaver["did"])
    steps = ("login and sign-up refused", "servers stopped", "backed up in", "deleted from the hub", "volumes removed")
    assert all(what in did for what in steps), did
    assert hub.api("GET", f"users/{LEAVER}").status_code == 404
    assert not [v for v in engine.volumes.list(filters={"name": hub.volume_name(LEAVER, "")}) if v.name in volumes]
    backup = status(hub, "VolumeBackup", leaver["backup"])
    assert backup["phase"] == "Succeeded" and backup["archives"]
    for a in backup["archives"]:  # verified against the archive itself
        out = engine.containers.run(
            BASE_IMAGE, ["sha256sum", f"/b/{a['path']}"], volumes={backup_volume(hub): {"bind": "/b"}}, remove=True
        )
        assert out.decode().split()[0] == a["sha256"]
    session, _ = hub.login(LEAVER, "anything")
    assert session is None
    hub.signup(LEAVER)
    with db(hub) as c:
        assert c.execute("select count(*) from users_info where username = ?", (LEAVER,)).fetchone()[0] == 0
    said = [e["message"] for e in events(hub, "Roster", ROSTER) if e["message"].startswith(f"{LEAVER}: ")]
    reasons = {e["reason"] for e in events(hub, "Roster", ROSTER) if e["message"].startswith(f"{LEAVER}: ")}
    assert {"LoginRefused", "ServerStopped", "BackupRequested", "BackedUp", "SignedOut", "VolumesRemoved"} <= reasons
    assert any("sha256" in m for m in said)
    assert st["existing"] == 49 and not {k: v for k, v in st["pending"].items() if k != "passwordNotRead"}


def test_4_reapplying_unchanged_changes_nothing(hub: Hub, course: None) -> None:
    def changes() -> list[dict]:  # the roster's own events (not the request to reconcile)
        return [e for e in events(hub, "Roster", ROSTER) if e["reason"] != "ReconcileRequested"]

    before = changes()
    result = hub.hubctl("reconcile", f"roster/{ROSTER}", "--timeout", "60s")
    assert result.returncode == 0, result.stderr
    assert changes() == before


def test_5_delete_with_care(hub: Hub, engine: docker.DockerClient, course: None) -> None:
    labels = {naming.LABEL_PLATFORM: hub.platform}
    for user in (SOLO, LONER):
        hub.create_user(user)
        engine.volumes.create(hub.volume_name(user, "home"), labels=labels)
    # a roster's person is refused: their roster would make them again
    listed = hub.hubctl("delete", "user", "rs-u03")
    assert listed.returncode == 0, listed.stderr
    refused = listed.stdout.split("userremoval/")[1].split(",")[0]
    st = wait_for(lambda: (s := status(hub, "UserRemoval", refused)).get("phase") == "Failed" and s, 30, "refused")
    assert "listed by roster/rs-course" in str(st["conditions"])
    hub.api("DELETE", f"resources/userremoval/{refused}")
    # hubctl delete user: removal delete
    result = hub.hubctl("delete", "user", SOLO, "--removal", "delete")
    assert result.returncode == 0, result.stderr
    name = result.stdout.split("userremoval/")[1].split(",")[0]
    st = wait_for(lambda: (s := status(hub, "UserRemoval", name)).get("phase") == "Succeeded" and s, 60, "removed")
    assert any("volumes removed" in d for d in st["did"]) and hub.api("GET", f"users/{SOLO}").status_code == 404
    assert not engine.volumes.list(filters={"name": hub.volume_name(SOLO, "home")})
    hub.api("DELETE", f"resources/userremoval/{name}")
    # JupyterHub's own admin delete: caught, the volume kept and said so
    assert hub.api("DELETE", f"users/{quote(LONER)}").status_code == 204
    [kept] = [e for e in events(hub, reason="VolumesKept") if e["kind"] == "User" and e["name"] == LONER]
    assert hub.volume_name(LONER, "home") in kept["message"]
    assert engine.volumes.list(filters={"name": hub.volume_name(LONER, "home")})


def test_6_passwords_none_pre_approves_the_sign_up(hub: Hub, course: None) -> None:
    apply(hub, "Roster", OPEN, {"users": [{"name": NOPW}], "passwords": "none", "removal": "delete"})
    wait_for(lambda: status(hub, "Roster", OPEN).get("phase") == "Ready", 30, "the open roster Ready")
    result = hub.hubctl("roster", "passwords", OPEN, "-o", "csv")
    assert result.returncode == 0 and result.stdout.strip() == "user,password"  # none made
    hub.signup(NOPW)
    session, error = hub.login(NOPW)  # approved at once: nobody clicked /hub/authorize
    assert session is not None, error
    session.close()


def test_7_users_import_makes_a_roster_and_export_reads_back(hub: Hub, course: None, tmp_path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(f"name,groups,email,displayName\n{IMPORTS[0]},{IMP_GROUP},a@example.org,Imp A\n{IMPORTS[1]},,,\n")
    dry = hub.hubctl("users", "import", str(people), "--roster", IMPORTED, "--dry-run")
    assert dry.returncode == 0 and "kind: Roster" in dry.stdout and IMPORTS[0] in dry.stdout, dry.stderr
    assert not status(hub, "Roster", IMPORTED)  # a dry run applies nothing
    applied = hub.hubctl("users", "import", str(people), "--roster", IMPORTED)
    assert applied.returncode == 0 and f"roster/{IMPORTED} created (2 users)" in applied.stdout, applied.stderr
    wait_for(lambda: status(hub, "Roster", IMPORTED).get("phase") == "Ready", 60, "the imported roster Ready")
    assert set(IMPORTS) <= approved(hub) and group_members(hub, IMP_GROUP) == {IMPORTS[0]}
    exported = hub.hubctl("users", "export")
    assert exported.returncode == 0, exported.stderr
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(exported.stdout))}
    assert rows[IMPORTS[0]]["email"] == "a@example.org" and rows[IMPORTS[0]]["groups"] == IMP_GROUP
    bad = tmp_path / "bad.csv"
    bad.write_text("name,groups\nok-name,g\nBad Name,g\n")
    refused = hub.hubctl("users", "import", str(bad), "--roster", "rs-bad")
    assert refused.returncode != 0 and f"{bad}:3" in refused.stderr and "nothing was applied" in refused.stderr
