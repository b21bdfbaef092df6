"""The settings model: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import secrets

import pytest

from vocabulary.settings import GpuMode, SettingsError, load_settings, settings_table


def test_defaults() -> None:
    s = load_settings({})
    assert s.admin == "admin"
    assert s.public_url == "http://127.0.0.1:8000/"
    assert s.gpu_mode is GpuMode.AUTO
    assert s.host_network
    assert s.user_volumes == {"home": "/home", "workspace": "/home/lab/workspace", "cache": "/home/lab/.cache"}
    assert s.volume_name_template == "jupyterlab-{username}_{volume}"
    assert s.automation_token is None
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith(".state/jupyterhub.sqlite")


def test_values_from_the_environment() -> None:
    s = load_settings(
        {
            "JUPYTERHUB_ADMIN": "Root",
            "JUPYTERHUB_BASE_URL": "/jupyterhub",
            "ENABLE_GPU_SUPPORT": "1",
            "DOCKER_NETWORK_NAME": "jupyterhub_network",
            "USER_VOLUMES": "home=/home,data=/data",
            "DOCKER_MEM_LIMIT": "4g",
            "JUPYTERHUB_CLEANUP_SERVERS": "true",
            "UNRELATED": "ignored",
        }
    )
    assert s.admin == "root"  # usernames are lowercase in the hub
    assert s.base_url == "/jupyterhub/"
    assert s.gpu_mode is GpuMode.ON
    assert not s.host_network
    assert s.user_volumes == {"home": "/home", "data": "/data"}
    assert s.mem_limit == "4G"
    assert s.cleanup_servers is True


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ENABLE_GPU_SUPPORT": "3"}, "invalid setting ENABLE_GPU_SUPPORT='3': allowed values: 0 (off), 1 (on), 2"),
        ({"ENABLE_GPU_SUPPORT": "yes"}, "invalid setting ENABLE_GPU_SUPPORT='yes': allowed values"),
        ({"DOCKER_NETWORK_NAME": "bridge"}, "invalid setting DOCKER_NETWORK_NAME='bridge': allowed values: `host`"),
        ({"DOCKER_NETWORK_NAME": "bad name"}, "invalid setting DOCKER_NETWORK_NAME='bad name'"),
        ({"JUPYTERHUB_PORT": "http"}, "invalid setting JUPYTERHUB_PORT='http'"),
        ({"JUPYTERHUB_BASE_URL": "hub/"}, "invalid setting JUPYTERHUB_BASE_URL='hub/': must start with '/'"),
        ({"USER_VOLUMES": "home"}, "invalid setting USER_VOLUMES"),
        ({"USER_VOLUMES": '{"home": "/home"'}, "invalid setting USER_VOLUMES"),
        ({"USER_VOLUMES": "Home=/home"}, "volume key 'Home' must match"),
        ({"USER_VOLUMES": "home=relative"}, "must be an absolute path"),
        ({"USER_VOLUME_NAME_TEMPLATE": "vol-{username}"}, "must contain both {username} and {volume}"),
        ({"USER_VOLUME_NAME_TEMPLATE": "{user}_{volume}"}, "only {username} and {volume} may be used"),
        ({"DOCKER_MEM_LIMIT": "lots"}, "invalid setting DOCKER_MEM_LIMIT='lots'"),
        ({"JUPYTERHUB_ADMIN": "no spaces"}, "invalid setting JUPYTERHUB_ADMIN"),
        ({"DOCKER_PULL_POLICY": "sometimes"}, "invalid setting DOCKER_PULL_POLICY='sometimes'"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert expected in str(info.value)
    assert "Traceback" not in str(info.value)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"ENABLE_GPU_SUPPORT": "9", "JUPYTERHUB_PORT": "0"})
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert {line.split("=")[0] for line in lines} == {
        "invalid setting ENABLE_GPU_SUPPORT",
        "invalid setting JUPYTERHUB_PORT",
    }


def test_token_is_secret_and_never_echoed() -> None:
    token = secrets.token_hex(20)
    s = load_settings({"HUB_AUTOMATION_TOKEN": token})
    assert s.automation_token is not None and s.automation_token.get_secret_value() == token
    assert token not in repr(s) and token not in str(s.model_dump())
    with pytest.raises(SettingsError) as info:
        load_settings({"HUB_AUTOMATION_TOKEN": "tooshort-secret"})
    assert "HUB_AUTOMATION_TOKEN: must be at least 32 characters" in str(info.value)
    assert "tooshort-secret" not in str(info.value)
    assert load_settings({"HUB_AUTOMATION_TOKEN": ""}).automation_token is None
    for guessable in ("a" * 64, "ab" * 32, "0123456789abcdef" * 4, "password" * 6):
        with pytest.raises(SettingsError, match="too predictable") as info:
            load_settings({"HUB_AUTOMATION_TOKEN": guessable})
        assert guessable not in str(info.value)


def test_only_documented_variable_names_are_read(monkeypatch) -> None:
    # Bare field names (HUB_PORT, ADMIN, STATE_DIR...) in the environment are not settings.
    for name, value in {"HUB_PORT": "8000", "ADMIN": "mallory", "STATE_DIR": "/tmp/elsewhere", "PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("JUPYTERHUB_HUB_PORT", "JUPYTERHUB_ADMIN", "JUPYTERHUB_STATE_DIR", "JUPYTERHUB_PORT"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert (s.hub_port, s.admin, str(s.state_dir), s.port) == (8081, "admin", ".state", 8000)


def test_shared_volume_must_not_shadow_a_user_volume() -> None:
    with pytest.raises(SettingsError, match="SHARED_VOLUME_MOUNT must differ"):
        load_settings({"SHARED_VOLUME_NAME": "nas", "SHARED_VOLUME_MOUNT": "/home"})


def test_table_lists_every_variable_once() -> None:
    names = [name for name, _, _ in settings_table()]
    assert len(names) == len(set(names))
    assert {"JUPYTERHUB_ADMIN", "ENABLE_GPU_SUPPORT", "DOCKER_NETWORK_NAME", "HUB_AUTOMATION_TOKEN"} <= set(names)
    assert all(description for _, _, description in settings_table())


def test_engine_access_allowed_refuses_a_bare_wildcard() -> None:
    """`*` would exempt every container from the engine-wide survey (docs/security.md)."""
    for value in ("*", "jupyterhub,*", "**,?"):
        with pytest.raises(SettingsError) as info:
            load_settings({"ENGINE_ACCESS_ALLOWED": value})
        assert "ENGINE_ACCESS_ALLOWED" in str(info.value) and "matches every container name" in str(info.value)
    assert load_settings({"ENGINE_ACCESS_ALLOWED": "jhds-test*, jupyterhub"}).engine_access_allowed == [
        "jhds-test*",
        "jupyterhub",
    ]
