"""The sign-in rate limit's pure parts: the sliding window, its bound, the client's address."""

from __future__ import annotations

import ipaddress

import pytest

from hub_config.ratelimit import SlidingWindow, client_address, retry_after
from vocabulary.settings import SettingsError, load_settings
from vocabulary.settings.hub import Rate, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_allows_count_attempts_then_says_when_the_oldest_expires() -> None:
    clock = Clock()
    window = SlidingWindow(Rate(3, 60), clock=clock)
    for _ in range(3):
        assert window.acquire("a")[0] is None
        clock.now += 10
    wait, _ = window.acquire("a")
    assert wait == pytest.approx(30)  # the first attempt (t=1000) leaves the window at 1060
    assert window.acquire("b")[0] is None  # another address has its own window
    clock.now = 1060.0
    assert window.acquire("a")[0] is None  # it slid: one slot free
    assert window.acquire("a")[0] == pytest.approx(10)


def test_a_refused_attempt_is_not_recorded_and_a_refund_frees_its_slot() -> None:
    clock = Clock()
    window = SlidingWindow(Rate(2, 60), clock=clock)
    window.acquire("a")
    clock.now += 1
    _, when = window.acquire("a")
    for _ in range(100):  # hammering while refused does not push the window further
        assert window.acquire("a")[0] == pytest.approx(59)
    window.refund("a", when)
    assert window.acquire("a")[0] is None


def test_memory_is_bounded_by_addresses_times_count() -> None:
    window = SlidingWindow(Rate(5, 60), max_keys=100, clock=Clock())
    for n in range(10_000):
        for _ in range(20):
            window.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(window) == 100
    assert all(len(w) <= 5 for w in window._attempts.values())
    assert "10.0.39.15" in window._attempts  # the most recent address is kept, the oldest went


def test_no_limit_records_nothing() -> None:
    window = SlidingWindow(Rate(0, 60), clock=Clock())
    assert all(window.acquire("a")[0] is None for _ in range(1000))
    assert len(window) == 0


def test_retry_after_is_whole_seconds_never_zero() -> None:
    assert retry_after(0.0) == 1
    assert retry_after(29.2) == 30


@pytest.mark.parametrize(
    ("text", "rate", "shown"),
    [
        ("10/minute", Rate(10, 60), "10/minute"),
        ("5 / 30s", Rate(5, 30), "5/30s"),
        ("0", Rate(0, 60), "0"),
        ("100/hour", Rate(100, 3600), "100/hour"),
        ("off", Rate(0, 60), "0"),
    ],
)
def test_rates_read_and_shown(text: str, rate: Rate, shown: str) -> None:
    assert parse_rate(text) == rate
    assert str(rate) == shown


@pytest.mark.parametrize("bad", ["10", "ten/minute", "10/fortnight", "10/0s", "10/100000s"])
def test_a_bad_rate_names_the_setting(bad: str) -> None:
    with pytest.raises(SettingsError, match="LOGIN_RATE_LIMIT"):
        load_settings({"LOGIN_RATE_LIMIT": bad})


@pytest.mark.parametrize("bad", ["0.0.0.0/0", "::/0", "*", "a b", "http://x/"])
def test_trusted_proxies_never_everyone(bad: str) -> None:
    with pytest.raises(SettingsError, match="HUB_TRUSTED_PROXIES"):
        load_settings({"HUB_TRUSTED_PROXIES": bad})


TRAEFIK = [ipaddress.ip_network("172.18.0.3/32")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        # make up: the hub's proxy appends the address it saw; what the client wrote is ignored
        ("127.0.0.1", ["198.51.100.7"], [], "198.51.100.7"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], [], "198.51.100.7"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.7"], [], "198.51.100.7"),  # two header lines
        ("127.0.0.1", [], [], "127.0.0.1"),
        # compose: Traefik (trusted) -> the hub's proxy: Traefik's entry is believed, no further
        ("127.0.0.1", ["203.0.113.5,172.18.0.3"], TRAEFIK, "203.0.113.5"),
        ("127.0.0.1", ["6.6.6.6,203.0.113.5,172.18.0.3"], TRAEFIK, "203.0.113.5"),
        ("127.0.0.1", ["203.0.113.5,172.18.0.4"], TRAEFIK, "172.18.0.4"),  # a lab is not Traefik
        ("127.0.0.1", ["garbage,172.18.0.3"], TRAEFIK, "172.18.0.3"),
        # straight to the hub's port (a lab on a named network): its own address, header or not
        ("172.18.0.9", ["1.2.3.4"], TRAEFIK, "172.18.0.9"),
        ("172.18.0.3", ["1.2.3.4"], TRAEFIK, "172.18.0.3"),  # even Traefik's, when not through the proxy
        # IPv4-mapped as IPv4, IPv6 by /64
        ("::ffff:127.0.0.1", ["::ffff:198.51.100.7"], [], "198.51.100.7"),
        ("::1", ["2001:db8:1:2:aaaa::1"], [], "2001:db8:1:2::/64"),
        ("", [], [], "unknown"),
    ],
)
def test_the_client_address(peer: str, forwarded: list[str], trusted: list, client: str) -> None:
    assert client_address(peer, forwarded, trusted) == client


def test_rates_and_proxies_read_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the hub reads them (not through a mapping): no JSON decoding of the values."""
    monkeypatch.setenv("LOGIN_RATE_LIMIT", "30/minute")
    monkeypatch.setenv("SIGNUP_RATE_LIMIT", "5/30s")
    monkeypatch.setenv("HUB_TRUSTED_PROXIES", "jupyterhub-traefik, 10.0.0.0/8")
    s = load_settings()
    assert (s.login_rate_limit, s.signup_rate_limit) == (Rate(30, 60), Rate(5, 30))
    assert s.trusted_proxies == ["jupyterhub-traefik", "10.0.0.0/8"]
