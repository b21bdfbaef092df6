"""The accounts a Roster manages (`jhds_accounts`) and NativeAuthenticator's records of them
(its `users_info` table, in the same hub database): approval, one-time passwords, and the
names whose login and sign-up are refused because the platform removed them.

Approval is written to `users_info` directly, not through NativeAuthenticator's
`/hub/authorize/NAME`: that handler toggles (applying twice would revoke), needs an admin's
browser session and costs one request per user; setting `is_authorized` to true is
idempotent and one transaction for a page of users. The hub reads the record fresh at every
login (`PlatformAuthenticator.get_user`), so it never judges a cached copy.

A one-time password is random (128 bits), so bcrypt's cost adds nothing against guessing
it; it is hashed at bcrypt's lowest cost (ONE_TIME_ROUNDS) so that 1,000 accounts take a
second, not minutes. The plaintext is kept in `jhds_accounts` only until an admin reads it
once (`read_passwords`), then only the hash remains; the user's own password, set at first
login, is NativeAuthenticator's usual hash.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .store import Store
from .tables import USERS_INFO, Base, UTCDateTime, ensure_tables, utcnow

ONE_TIME_ROUNDS = 4  # bcrypt's minimum: the secret is random, not a person's choice
ACTIVE, REMOVING, REMOVED = "active", "removing", "removed"
# Columns added to jhds_accounts after it was first made (added in place by `ensure_tables`).
ADDED_COLUMNS = {"jhds_accounts": {"one_time_made": "TIMESTAMP"}}


class AccountRow(Base):
    """A person a Roster manages, or one the platform removed (login and sign-up refused)."""

    __tablename__ = "jhds_accounts"
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    roster: Mapped[str] = mapped_column(String(63), index=True)
    state: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    one_time_hash: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The plaintext until an admin reads it once; never logged, never in a status or event.
    one_time_password: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the one-time password was made: it signs in for ONE_TIME_PASSWORD_DAYS from then.
    one_time_made: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass
class Enrolled:
    """What enrolling a page of people changed (names): nothing on a re-apply of the same."""

    approved: list[str] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # were removed, listed again

    @property
    def writes(self) -> int:
        return len(self.approved) + len(self.passwords) + len(self.released)


def new_password() -> str:
    return secrets.token_urlsafe(16)


def hash_one_time(password: str) -> bytes:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=ONE_TIME_ROUNDS))


class Accounts:
    """Synchronous and short, like the store: call it from a worker thread in async code."""

    def __init__(self, store: Store):
        self.store = store
        ensure_tables(store.engine, [AccountRow.__table__], ADDED_COLUMNS)  # type: ignore[list-item]
        USERS_INFO.create(store.engine, checkfirst=True)  # the hub's authenticator makes it too

    def of_roster(self, roster: str) -> dict[str, str]:
        """{username: state} of the people this roster manages or removed."""
        with self.store.session() as s:
            rows = s.execute(select(AccountRow.username, AccountRow.state).where(AccountRow.roster == roster))
            return {name: state for name, state in rows}

    def enroll(
        self, roster: str, people: dict[str, str | None], one_time: bool, expire_days: float | None = None
    ) -> Enrolled:
        """Make these people (name -> email) the roster's and approved: an approved record of
        theirs kept, a pending one approved (with `one_time`, under a new one-time password:
        who signed up before the roster listed the name is not known), else (one_time) a new
        record with a one-time password; `none` leaves the record to their sign-up, which
        `pre_approved` approves at once. With `expire_days` (and `one_time`): people whose
        one-time password was never replaced and is older than that get a new one."""
        done = Enrolled()
        names = list(people)
        with self.store.session() as s:
            accounts = {r.username: r for r in s.scalars(select(AccountRow).where(AccountRow.username.in_(names)))}
            query = select(USERS_INFO.c.username, USERS_INFO.c.is_authorized, USERS_INFO.c.password)
            found = list(s.execute(query.where(USERS_INFO.c.username.in_(names))))
            infos = {name: bool(authorized) for name, authorized, _ in found}
            now = utcnow()
            expired = set()
            if one_time and expire_days is not None:
                current = {name: password for name, _, password in found}
                expired = {n for n, a in accounts.items() if stale(a, current.get(n), expire_days, now)}
            for name in names:
                account = accounts.get(name)
                if account is None:
                    account = AccountRow(username=name, roster=roster, state=ACTIVE, updated=now)
                    s.add(account)
                elif account.roster != roster or account.state != ACTIVE:
                    if account.state != ACTIVE:
                        done.released.append(name)
                    account.roster, account.state, account.updated = roster, ACTIVE, now
                if name in expired:
                    hashed = issue_one_time(account, now, done)
                    s.execute(update(USERS_INFO).where(USERS_INFO.c.username == name).values(password=hashed))
                elif name in infos:
                    if not infos[name]:
                        values: dict[str, object] = {"is_authorized": True}
                        if one_time:
                            # A sign-up under the name before the roster listed it: whose, nobody
                            # knows, so its password is not the one approved; the roster's person
                            # gets a one-time password, as a new account would.
                            values |= {"password": issue_one_time(account, now, done), "email": people[name]}
                        s.execute(update(USERS_INFO).where(USERS_INFO.c.username == name).values(**values))
                        done.approved.append(name)
                elif one_time:
                    hashed = issue_one_time(account, now, done)
                    s.execute(USERS_INFO.insert().values(**record(name, hashed, people[name])))
        return done

    def unread_passwords(self, roster: str) -> list[str]:
        with self.store.session() as s:
            query = select(AccountRow.username).where(
                AccountRow.roster == roster, AccountRow.one_time_password.is_not(None)
            )
            return sorted(s.scalars(query))

    def read_passwords(self, roster: str) -> list[tuple[str, str]]:
        """The one-time passwords not read yet, [(name, password)]: this once; after it only
        the hashes are kept."""
        with self.store.session() as s:
            query = (
                select(AccountRow)
                .where(AccountRow.roster == roster, AccountRow.one_time_password.is_not(None))
                .with_for_update()
            )
            rows = list(s.scalars(query))
            found = sorted((r.username, r.one_time_password or "") for r in rows)
            for r in rows:
                r.one_time_password, r.updated = None, utcnow()
            return found

    def roster_of(self, name: str) -> str | None:
        """The roster that manages this person now (None: none, or they were removed)."""
        with self.store.session() as s:
            query = select(AccountRow.roster).where(AccountRow.username == name, AccountRow.state == ACTIVE)
            return s.scalar(query) or None

    def state(self, name: str) -> str | None:
        with self.store.session() as s:
            return s.scalar(select(AccountRow.state).where(AccountRow.username == name))

    def set_state(self, names: Iterable[str], state: str, roster: str | None = None) -> None:
        """Record a removal's progress; refusing a name also un-approves its record, so no
        login succeeds from here on (and `roster` records a name the platform removes)."""
        names = list(names)
        with self.store.session() as s:
            have = set(s.scalars(select(AccountRow.username).where(AccountRow.username.in_(names))))
            now = utcnow()
            for name in names:
                if name not in have:
                    s.add(AccountRow(username=name, roster=roster or "", state=state, updated=now))
            s.execute(update(AccountRow).where(AccountRow.username.in_(names)).values(state=state, updated=now))
            if state != ACTIVE:
                s.execute(update(USERS_INFO).where(USERS_INFO.c.username.in_(names)).values(is_authorized=False))

    # --- the hub's questions (its authenticator and login handler) ---
    def listed_by(self, name: str) -> str | None:
        """The Roster whose list names this person now (not one deleted since, nor one that
        dropped them: those leave an ordinary account, approved by hand)."""
        roster = self.roster_of(name)
        found = self.store.get("Roster", roster) if roster else None
        if found is None or not any(u.get("name") == name for u in found.spec.get("users") or []):
            return None
        return roster

    def pre_approved(self, name: str) -> bool:
        """A sign-up under this name is approved at once: a roster lists it."""
        return self.listed_by(name) is not None

    def refused(self, name: str) -> bool:
        """Login and sign-up are refused: the platform removes, or removed, this person."""
        return self.state(name) in (REMOVING, REMOVED)

    def must_change(self, name: str) -> bool:
        """The person's password is still the one-time one the roster gave them."""
        with self.store.session() as s:
            given = s.scalar(select(AccountRow.one_time_hash).where(AccountRow.username == name))
            if given is None:
                return False
            return still_one_time(given, s.scalar(select(USERS_INFO.c.password).where(USERS_INFO.c.username == name)))

    def one_time_expired(self, name: str, days: float, now: datetime | None = None) -> bool:
        """The person's password is still a one-time one made over `days` ago
        (ONE_TIME_PASSWORD_DAYS): login with it is refused; the Roster makes a new one."""
        with self.store.session() as s:
            account = s.get(AccountRow, name)
            current = s.scalar(select(USERS_INFO.c.password).where(USERS_INFO.c.username == name))
            return account is not None and stale(account, current, days, now or utcnow())


def issue_one_time(account: AccountRow, now: datetime, done: Enrolled) -> bytes:
    """A new one-time password for the account (kept until an admin reads it once); its hash,
    for NativeAuthenticator's record."""
    password = new_password()
    hashed = hash_one_time(password)
    account.one_time_hash, account.one_time_password, account.one_time_made, account.updated = (
        hashed,
        password,
        now,
        now,
    )
    done.passwords.append(account.username)
    return hashed


def still_one_time(given: bytes | None, current: bytes | None) -> bool:
    """The record's password is still the one-time one the roster gave."""
    return given is not None and current is not None and bytes(current) == bytes(given)


def stale(account: AccountRow, current: bytes | None, days: float, now: datetime) -> bool:
    """`current` (the record's password) is still the account's one-time one, made over
    `days` before `now` (a row from before `one_time_made`: counted from its last change)."""
    if not still_one_time(account.one_time_hash, current):
        return False
    return (account.one_time_made or account.updated) < now - timedelta(days=days)


def record(name: str, hashed: bytes, email: str | None) -> dict[str, object]:
    """A new NativeAuthenticator record, approved, as its `UserInfo` would be made."""
    return {
        "username": name,
        "password": hashed,
        "is_authorized": True,
        "login_email_sent": False,
        "email": email,
        "has_2fa": False,
        "otp_secret": base64.b32encode(os.urandom(10)).decode(),
    }
