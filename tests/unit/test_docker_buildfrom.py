"""A build's base images (its Dockerfile read from the tar context, `FROM` and `COPY --from`
with ARG substitution and stages) and the decisions on them; a tag another user's image
holds is not taken by a build or a pull."""

from __future__ import annotations

import io
import tarfile
import tempfile
from typing import IO

import pytest

from reconciler import docker_requests as dr
from reconciler.docker_proxy.context import read_dockerfile
from reconciler.docker_requests import SHARED, Allow, Quota, Refuse, Request, View

ANN_ID = "sha256:" + "a" * 64


def bases(text: str, buildargs: str = "") -> list[str]:
    found = dr.build_bases(text, {"buildargs": [buildargs]} if buildargs else {})
    assert not isinstance(found, Refuse), found
    return found


def test_args_before_the_first_from_substitute_with_buildargs_over_their_defaults() -> None:
    text = "ARG REPO=ann/app\nARG TAG\nARG FULL=${REPO}:${TAG:-dev}\nFROM $FULL\nARG LATE=x\nFROM other:${LATE}\n"
    assert bases(text) == ["ann/app:dev", "other:"]
    assert bases(text, '{"TAG": "v2", "LATE": "y", "NOPE": null}') == ["ann/app:v2", "other:"]
    assert bases("ARG X\nFROM a${X:+-set}\n", '{"X": "1"}') == ["a-set"]


def test_stages_and_scratch_are_not_images_and_copy_from_is() -> None:
    text = (
        "FROM --platform=linux/amd64 base:1 AS Builder\n"
        "FROM builder AS two\n"
        "FROM scratch\n"
        "COPY --from=BUILDER /a /a\n"
        "COPY --from=0 /a /a\n"
        "COPY --chown=1:1 --from=ann/secret /s /s\n"
        "ONBUILD COPY --from=ann/later /x /x\n"
        "FROM later\n"  # a stage named later in the file is an image here
        "FROM later AS later\n"
    )
    assert bases(text) == ["base:1", "ann/secret", "ann/later", "later"]


def test_continuations_comments_and_the_escape_directive() -> None:
    text = "# escape=`\n\n# a comment\nfrom `\n  # inside\n\n ann/app`\n:1 as x\nRUN echo \\\n"
    assert bases(text) == ["ann/app:1"]
    assert bases("FROM \\\n  ann/app:2\n") == ["ann/app:2"]


@pytest.mark.parametrize(
    "text",
    ["RUN true\n", "FROM a b\n", "FROM ${X?}\n", "FROM 'open\n", "ARG 1x=2\nFROM a\n", "# escape=x\nFROM a\n"],
)
def test_what_cannot_be_read_as_the_engine_reads_it_is_a_400(text: str) -> None:
    found = dr.build_bases(text, {})
    assert isinstance(found, Refuse) and found.status == 400


def test_buildargs_that_are_not_a_json_object_are_a_400() -> None:
    found = dr.build_bases("FROM a\n", {"buildargs": ["[1]"]})
    assert isinstance(found, Refuse) and found.status == 400 and found.field == "buildargs"


def context(files: dict[str, str | tuple[str, str]], mode: str = "w") -> IO[bytes]:
    """A tar context in a temporary file: a str is a file's text, a ("link", target) a symlink."""
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 (the test closes it: `with context(...)`)
    with tarfile.open(fileobj=spooled, mode=mode) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                data = content.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return spooled


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_the_dockerfile_is_read_from_a_plain_or_compressed_context(mode: str) -> None:
    with context({"./Dockerfile": "FROM ann/app\n", "sub/Other": "FROM b\n"}, mode) as spooled:
        assert read_dockerfile(spooled, "Dockerfile") == "FROM ann/app\n"
        assert read_dockerfile(spooled, "sub/Other") == "FROM b\n"


def test_links_are_followed_inside_the_context_and_the_lowercase_name_is_a_fallback() -> None:
    files: dict[str, str | tuple[str, str]] = {
        "real/df": "FROM c\n",
        "Dockerfile": ("link", "../../real/df"),  # clamped to the context's root, as the engine does
        "dir": ("link", "/real"),
    }
    with context(files) as spooled:
        assert read_dockerfile(spooled, "Dockerfile") == "FROM c\n"
        assert read_dockerfile(spooled, "dir/df") == "FROM c\n"
    with context({"dockerfile": "FROM d\n"}) as spooled:
        assert read_dockerfile(spooled, "Dockerfile") == "FROM d\n"
        missing = read_dockerfile(spooled, "Other")
        assert isinstance(missing, Refuse) and missing.status == 400


def test_a_body_that_is_not_a_tar_is_a_400() -> None:
    with tempfile.TemporaryFile() as spooled:
        spooled.write(b"FROM a\n" * 200)
        found = read_dockerfile(spooled, "Dockerfile")
    assert isinstance(found, Refuse) and found.status == 400


def build(query: dict[str, list[str]], view: View, user: str = "bob") -> Allow | Refuse:
    return dr.decide(Request("POST", "/v1.41/build", query, None, 100), user, Quota(), view)


@pytest.mark.parametrize("path", ["../Dockerfile", "a/../../Dockerfile", "/etc/Dockerfile", "https://x/Dockerfile"])
def test_a_dockerfile_outside_the_context_or_a_url_is_refused(path: str) -> None:
    found = build({"dockerfile": [path]}, View(platform="p"))
    assert isinstance(found, Refuse) and found.status == 403 and found.field == "dockerfile", found
    assert isinstance(build({"dockerfile": ["sub/../Dockerfile.dev"]}, View(platform="p")), Allow)


def test_a_base_image_another_user_recorded_or_the_platforms_is_absent() -> None:
    images = {"ann/app": "ann", "ann/app:latest": "ann", ANN_ID: "ann", "python:3": SHARED, "mine:1": "bob"}
    view = View(platform="p", images=images, reserved_images=frozenset({"jupyterhub-ds/lab"}))
    assert dr.judge_bases(["python:3", "mine:1", "unknown/public:1"], "bob", view) is None
    for ref in ("ann/app", ANN_ID, "aaaaaaaaaaaa", "jupyterhub-ds/lab:minimal"):
        found = dr.judge_bases([ref], "bob", view)
        assert isinstance(found, Refuse) and found.status == 404 and found.message == f"No such image: {ref}"
    assert dr.judge_bases(["ann/app"], "ann", view) is None


def test_a_tag_another_users_image_holds_is_not_taken_by_a_build_or_a_pull() -> None:
    view = View(platform="p", images={"ann/app:latest": "ann", "python:3": SHARED, "bob/app:latest": "bob"})
    found = build({"t": ["bob/app", "ann/app"]}, view)
    assert isinstance(found, Refuse) and found.status == 409 and found.field == "t"
    assert "another user's image" in found.message
    assert isinstance(build({"t": ["bob/app", "python:3", "new:1"]}, view), Allow)
    assert isinstance(build({"t": ["ann/app"]}, view, user="ann"), Allow)
    pull = dr.decide(
        Request("POST", "/images/create", {"fromImage": ["ann/app"], "tag": ["latest"]}), "bob", Quota(), view
    )
    assert isinstance(pull, Refuse) and pull.status == 409 and pull.field == "fromImage"
    assert isinstance(
        dr.decide(Request("POST", "/images/create", {"fromImage": ["python:3"]}), "bob", Quota(), view), Allow
    )


def test_a_base_images_onbuild_triggers_name_the_images_they_copy_from() -> None:
    assert dr.trigger_bases(["COPY --from=ann/secret /s /s", "RUN true", "COPY a b"]) == ["ann/secret"]
