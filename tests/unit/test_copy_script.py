"""The rename helper's program on real folders (coreutils `cp` and `cksum` of this machine):
every copy verified before any original is touched; the originals emptied but for this
request's marker; a resumed helper trusts only that marker, never a file of the same name a
user made; a copy that differs touches nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.clients import copy_script as cs

TOKEN = "f" * 32


def tree(root: Path) -> None:
    (root / "data").mkdir(parents=True)
    (root / "data" / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "data" / "-n").write_text("leading dash")
    (root / "data" / "new\nline").write_text("a newline in the name")
    (root / "notes.txt").write_text("x" * 5000)
    os.chmod(root / "notes.txt", 0o600)
    os.chown(root / "notes.txt", 1000, 100)
    os.link(root / "notes.txt", root / "hard-link")
    os.symlink("data/big.bin", root / "link")


@pytest.fixture
def volumes(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for key in ("home", "work"):
        tree(src / key)
        (dst / key).mkdir(parents=True)
    return src, dst


def move(src: Path, dst: Path, content: str = "cksum") -> dict:
    return cs.move(["home", "work"], TOKEN, content, cs.Mounts(str(src), str(src), str(dst), str(dst)))


def test_every_copy_is_verified_then_the_originals_are_emptied_but_for_the_marker(volumes) -> None:
    src, dst = volumes
    before = {k: cs.tree_digest(str(src / k), "cksum") for k in ("home", "work")}
    result = move(src, dst)
    assert result["content"] == "cksum" and [c["volume"] for c in result["copied"]] == ["home", "work"]
    for c in result["copied"]:
        assert c["checksum"] == before[c["volume"]][0] == cs.tree_digest(str(dst / c["volume"]), "cksum")[0]
        assert not c["resumed"] and c["files"] == 7 and c["bytes"] == (3 << 20) + 12 + 21 + 2 * 5000
        assert sorted(os.listdir(src / c["volume"])) == [cs.MARKER]
        assert json.loads((src / c["volume"] / cs.MARKER).read_text())["token"] == TOKEN
    assert (dst / "home" / "data" / "new\nline").read_text() == "a newline in the name"
    assert os.readlink(dst / "home" / "link") == "data/big.bin"
    assert os.stat(dst / "home" / "notes.txt").st_ino == os.stat(dst / "home" / "hard-link").st_ino
    assert cs.survey(["home", "work"], TOKEN, src=str(src)) == {"committed": ["home", "work"]}


def test_cksum_and_zlib_agree_on_whether_two_trees_are_equal(volumes) -> None:
    src, dst = volumes
    result = move(src, dst, content="crc32")
    assert result["content"] == "crc32"
    assert cs.tree_digest(str(dst / "home"), "crc32")[0] == result["copied"][0]["checksum"]
    (dst / "home" / "notes.txt").write_text("y" * 5000)  # same size, other content
    for content in ("crc32", "cksum", "sha256"):
        assert cs.tree_digest(str(dst / "home"), content)[0] != cs.tree_digest(str(dst / "work"), content)[0]


def test_a_resumed_helper_trusts_its_marker_and_finishes_emptying(volumes, monkeypatch) -> None:
    src, dst = volumes
    real_empty = cs.empty

    def killed_while_emptying(folder: str, keep: str = "") -> None:
        if keep:
            raise SystemExit("killed")  # after every marker, before any original is emptied
        real_empty(folder, keep)

    monkeypatch.setattr(cs, "empty", killed_while_emptying)
    with pytest.raises(SystemExit):
        move(src, dst)
    monkeypatch.setattr(cs, "empty", real_empty)
    (src / "home" / "notes.txt").unlink()  # half emptied: copying it again would lose a file
    result = move(src, dst)
    assert all(c["resumed"] for c in result["copied"])
    assert (dst / "home" / "notes.txt").read_text() == "x" * 5000
    assert sorted(os.listdir(src / "home")) == [cs.MARKER]


def test_a_marker_the_user_made_is_only_a_file(volumes) -> None:
    src, dst = volumes
    forged = {"token": "guessed", "checksum": cs.tree_digest(str(dst / "home"), "cksum")[0]}
    (src / "home" / cs.MARKER).write_text(json.dumps(forged))  # "the copy is the empty volume"
    result = move(src, dst)
    assert not result["copied"][0]["resumed"]
    assert json.loads((dst / "home" / cs.MARKER).read_text()) == forged  # copied as the user's file
    assert (dst / "home" / "data" / "big.bin").stat().st_size == 3 << 20


def test_the_marker_never_follows_a_link_the_user_left_under_its_names(volumes) -> None:
    src, dst = volumes
    (src / "home" / (cs.MARKER + ".tmp")).symlink_to(dst / "home" / "notes.txt")
    (src / "home" / cs.MARKER).symlink_to(src / "work" / "notes.txt")
    move(src, dst)
    assert (dst / "home" / "notes.txt").read_text() == "x" * 5000  # not overwritten by a marker
    assert os.path.islink(dst / "home" / (cs.MARKER + ".tmp"))  # copied as the user's links
    assert sorted(os.listdir(src / "home")) == [cs.MARKER] and not os.path.islink(src / "home" / cs.MARKER)


def test_a_resumed_copy_changed_since_its_check_is_refused(volumes, monkeypatch) -> None:
    src, dst = volumes
    monkeypatch.setattr(cs, "empty", lambda folder, keep="": None)  # the copies start empty; originals kept
    move(src, dst)
    (dst / "work" / "notes.txt").write_text("changed")
    assert "differs from its verified checksum" in move(src, dst)["refused"]


def test_a_copy_that_differs_touches_no_original(volumes, monkeypatch) -> None:
    src, dst = volumes
    real = cs.tree_digest
    monkeypatch.setattr(
        cs, "tree_digest", lambda root, content: ("0" * 64, 0, 0) if "/dst/" in root else real(root, content)
    )
    assert "the copy of home differs from the original" in move(src, dst)["refused"]
    assert cs.MARKER not in os.listdir(src / "home") and (src / "home" / "notes.txt").exists()
    assert cs.survey(["home", "work"], TOKEN, src=str(src)) == {"committed": []}
