"""Course checkpoints (labkit.course): built by the project's own training, verified by hash when loaded."""

import json

import pytest
import torch

from labkit import course
from labkit.labs import lab06


@pytest.fixture
def tiny_spec(monkeypatch):
    spec = course.CourseSpec("06", {"seed": 3, "max_steps": 2}, "a two-step GAN for the test")
    monkeypatch.setattr(lab06, "COURSE_CHECKPOINTS", {**getattr(lab06, "COURSE_CHECKPOINTS", {}), "t06": spec})
    return spec


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    # one real build shared by the tests below (a two-step run of lab 06's smoke GAN)
    folder = tmp_path_factory.mktemp("course")
    mp = pytest.MonkeyPatch()
    mp.setattr(lab06, "COURSE_CHECKPOINTS", {**getattr(lab06, "COURSE_CHECKPOINTS", {}),
                                             "t06": course.CourseSpec("06", {"seed": 3, "max_steps": 2}, "test")})
    entry = course.build("t06", folder=folder)
    yield folder, entry, mp
    mp.undo()


def test_build_writes_file_log_and_manifest_entry(built):
    folder, entry, _ = built
    assert (folder / "t06.pth").stat().st_size == entry["bytes"] <= course.MAX_BYTES
    assert entry["command"] == "labkit course build t06" and entry["seed"] == 3
    assert "labkit train 06" in (folder / "t06.log").read_text()   # the training log, as printed
    assert json.loads((folder / "t06.history.json").read_text())["epochs"]
    assert course.manifest(folder)["t06"]["sha256"] == entry["sha256"]
    assert entry["parameters"] == sum(p.numel() for p in lab06.make_generator(_cfg()).parameters())


def _cfg():
    from labkit import profiles
    return profiles.get("06", "smoke")


def test_load_verifies_and_fills_the_model(built):
    folder, _, _ = built
    net = lab06.make_generator(_cfg())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    course.load("t06", net, folder=folder)
    saved = torch.load(folder / "t06.pth", weights_only=True)
    assert all(torch.equal(net.state_dict()[k], saved[k]) for k in saved)
    assert any(not torch.equal(before[k], saved[k]) for k in saved)


def test_a_changed_file_is_refused_with_the_remake_command(built, tmp_path):
    folder, _, _ = built
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in folder.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    data = bytearray((bad / "t06.pth").read_bytes())
    data[-100] ^= 0xFF
    (bad / "t06.pth").write_bytes(bytes(data))
    with pytest.raises(course.CourseCheckpointError, match="labkit course build t06"):
        course.load("t06", lab06.make_generator(_cfg()), folder=bad)
    (bad / "t06.pth").unlink()
    with pytest.raises(course.CourseCheckpointError, match="missing"):
        course.verify("t06", folder=bad)


def test_unknown_name_lists_the_known_ones(tiny_spec):
    with pytest.raises(course.CourseCheckpointError, match="t06"):
        course.verify("nope")


def test_every_committed_course_checkpoint_matches_its_manifest():
    rows = [row for row in course.listing() if row["name"] != "t06"]   # t06: this module's test spec
    assert {row["name"] for row in rows} == set(course.manifest()), "every spec has a committed file, and no file lacks a spec"
    for row in rows:
        assert row["status"] == "ok", row
        entry = course.manifest()[row["name"]]
        assert entry["command"] == course.command(row["name"]), "committed files come from the plain command"
        assert (course.CHECKPOINT_DIR / entry["log"]).is_file()
