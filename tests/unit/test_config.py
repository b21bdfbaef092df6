"""The hub configuration built from settings."""

from __future__ import annotations

import secrets

from traitlets.config import Config

from hub_config.jupyterhub_config import AUTOMATION_SCOPES, apply_settings
from vocabulary.settings import load_settings


def build(env: dict[str, str], tmp_path) -> Config:
    c = Config()
    apply_settings(c, load_settings({"JUPYTERHUB_STATE_DIR": str(tmp_path), **env}))
    return c


TOKEN = secrets.token_hex(20)


def test_no_automation_service_without_token(tmp_path) -> None:
    c = build({}, tmp_path)
    assert [s["name"] for s in c.JupyterHub.services] == ["reconciler"]
    assert "automation" not in {r["name"] for r in c.JupyterHub.load_roles}


def test_automation_service_with_token(tmp_path) -> None:
    token = secrets.token_hex(32)
    c = build({"HUB_AUTOMATION_TOKEN": token}, tmp_path)
    assert {"name": "automation", "api_token": token} in c.JupyterHub.services
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "automation"]
    assert role["services"] == ["automation"]
    # Only what applying manifests needs; the hub's own admin scopes are a second opt-in.
    assert set(role["scopes"]) == set(AUTOMATION_SCOPES) == {"custom:jupyterhub-ds:write:resources"}
    c = build({"HUB_AUTOMATION_TOKEN": token, "HUB_AUTOMATION_ADMIN": "true"}, tmp_path)
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "automation"]
    assert {"admin:users", "admin:servers", "admin:groups"} <= set(role["scopes"])


def test_native_authenticator(tmp_path) -> None:
    c = build({"JUPYTERHUB_ADMIN": "boss", "NATIVE_AUTH_ALLOWED_FAILED_LOGINS": "4"}, tmp_path)
    assert c.Authenticator.admin_users == {"boss"}
    assert c.NativeAuthenticator.open_signup is False
    assert c.NativeAuthenticator.enable_signup is True
    assert c.NativeAuthenticator.allowed_failed_logins == 4
    assert c.NativeAuthenticator.minimum_password_length == 8


def test_state_lives_in_one_folder(tmp_path) -> None:
    c = build({}, tmp_path)
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file.startswith(str(tmp_path))
    assert c.ConfigurableHTTPProxy.pid_file.startswith(str(tmp_path))


def test_privileged_group_is_loaded_without_members(tmp_path) -> None:
    c = build({}, tmp_path)
    assert "users" not in c.JupyterHub.load_groups["docker-privileged"]


def test_named_network(tmp_path) -> None:
    c = build({"DOCKER_NETWORK_NAME": "jupyterhub_network", "JUPYTERHUB_HUB_CONNECT_IP": "jupyterhub"}, tmp_path)
    assert c.DockerSpawner.network_name == "jupyterhub_network"
    assert c.JupyterHub.hub_connect_ip == "jupyterhub"
    assert c.Spawner.ip == "0.0.0.0"


def test_reconciler_service_has_only_the_scopes_it_needs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUB_AUTOMATION_TOKEN", TOKEN)
    monkeypatch.setenv("RESYNC_SECONDS", "5")
    c = build({"HUB_AUTOMATION_TOKEN": TOKEN}, tmp_path)
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "reconciler"]
    assert service["command"][-2:] == ["-m", "reconciler.service"]
    assert service["environment"]["RESYNC_SECONDS"] == "5"
    assert "HUB_AUTOMATION_TOKEN" not in service["environment"]  # it has a token of its own
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "reconciler"]
    assert role["services"] == ["reconciler"]
    # admin:users: Rosters and removals create and delete users (POST/DELETE /users), and a
    # UserRename ends with JupyterHub's own rename: JupyterHub has no narrower scope
    # (docs/security.md). Nothing else of the users' or servers' administration.
    assert "admin:servers" not in role["scopes"]
    assert [s for s in role["scopes"] if s.startswith("admin:users")] == ["admin:users"]


def test_named_servers_that_jupyterhub_6_refuses_are_renamed(tmp_path) -> None:
    import jupyterhub

    c = build({}, tmp_path)
    if jupyterhub.__version__.startswith("5."):  # no such option: 5.x accepts every name
        assert "allow_existing_invalid_named_servers" not in c.JupyterHub
    else:
        assert c.JupyterHub.allow_existing_invalid_named_servers == "autorename"


def test_the_hub_refuses_to_run_as_another_release_than_asked(tmp_path) -> None:
    from hub_config.jupyterhub_config import series_problem

    six = load_settings({"JUPYTERHUB_STATE_DIR": str(tmp_path), "HUB_JUPYTERHUB": "6"})
    old = load_settings({"JUPYTERHUB_STATE_DIR": str(tmp_path), "HUB_JUPYTERHUB": "5.5"})
    assert series_problem(six, "6.1.1") is None and series_problem(old, "5.5.4") is None
    assert "HUB_JUPYTERHUB=5.5, but this is JupyterHub 6.1.1" in series_problem(old, "6.1.1")
    assert "start it from .venv (make up)" in series_problem(six, "5.5.4")
    assert series_problem(six, "60.0") is not None
