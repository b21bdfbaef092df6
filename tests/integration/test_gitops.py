"""GitOps stays the source of truth for what it owns (real hub, reconciler and manifests
folder): a change made elsewhere is put back at the next resync, naming who made it, unless
it carries the override label; two resources never manage one group."""

from __future__ import annotations

from tests.harness import Hub, wait_for
from tests.helpers import gm, resource

FILE = "gitops-owned.yaml"


def live(hub: Hub, name: str) -> dict:
    return resource(hub, "GroupMembership", name) or {}


def test_a_change_made_outside_gitops_is_put_back_and_named(hub: Hub) -> None:
    for user in ("gia", "gus"):
        hub.create_user(user)
    (hub.manifests_dir / FILE).write_text(gm("gitops-team", "gitops-team", ["gia"]))
    wait_for(lambda: live(hub, "gitops-team").get("status", {}).get("members") == ["gia"], 20, "applied from the file")

    r = hub.api("POST", "manifests", data=gm("gitops-team", "gitops-team", ["gia", "gus"]))
    assert r.status_code == 200 and r.json()["results"][0]["action"] == "configured", r.text
    assert live(hub, "gitops-team")["metadata"]["annotations"]["jupyterhub-ds/owner"] == "api"

    def put_back() -> bool:
        obj = live(hub, "gitops-team")
        return obj["spec"]["members"] == ["gia"] and obj["metadata"]["annotations"]["jupyterhub-ds/owner"] == "gitops"

    wait_for(put_back, 25, "the file's spec back within a resync (10 s here)")
    items = hub.api("GET", "resources/groupmembership/gitops-team/events").json()["items"]
    drift = [e for e in items if e["reason"] == "DriftCorrected"]
    assert drift and "service:" in drift[-1]["message"] and FILE in drift[-1]["message"]
    wait_for(lambda: live(hub, "gitops-team")["status"].get("members") == ["gia"], 20, "the group follows")


def test_the_override_label_keeps_a_change_made_elsewhere(hub: Hub) -> None:
    hub.create_user("gwen")
    (hub.manifests_dir / "override.yaml").write_text(gm("override-team", "override-team", ["gwen"]))
    wait_for(lambda: live(hub, "override-team").get("status", {}).get("members") == ["gwen"], 20, "applied")
    label = {"jupyterhub-ds/gitops-override": "true"}
    r = hub.api("POST", "manifests", data=gm("override-team", "override-team", [], labels=label))
    assert r.status_code == 200, r.text
    hub.api("POST", "resources/groupmembership/override-team/reconcile", params={"withSource": "true"})
    wait_for(lambda: live(hub, "override-team")["status"].get("members") == [], 20, "the change holds")
    assert live(hub, "override-team")["spec"]["members"] == []


def test_two_resources_never_manage_one_group(hub: Hub) -> None:
    r = hub.api("POST", "manifests", data=gm("first-manager", "shared-team", []))
    assert r.status_code == 200, r.text
    r = hub.api("POST", "manifests", data=gm("second-manager", "shared-team", []))
    assert r.status_code == 409
    assert "already managed by groupmembership/first-manager" in r.json()["errors"][0]["message"]
    assert hub.api("GET", "resources/groupmembership/second-manager").status_code == 404
