"""A tree packed into one file and unpacked again: the initdb template's format (`ops.cluster_pack`)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ops import cluster_pack
from ops.cluster_pack import MAGIC, PackError


def a_tree(root: Path) -> Path:
    """A small cluster-shaped tree: nested directories, an empty file, modes, a mostly-zero file."""
    (root / "base" / "1").mkdir(parents=True)
    (root / "global").mkdir()
    (root / "pg_wal").mkdir(mode=0o750)
    (root / "base" / "1" / "1259").write_bytes(b"\x01" * 8192)
    (root / "base" / "1" / "1259_fsm").write_bytes(b"")
    (root / "global" / "pg_control").write_bytes(os.urandom(512))
    (root / "pg_wal" / "segment").write_bytes(b"record" + b"\0" * (1 << 20))  # a WAL-like zero tail
    (root / "PG_VERSION").write_text("18\n")
    (root / "postgresql.conf").write_text("port = 5432\n")
    for path in root.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    (root / "pg_wal").chmod(0o750)
    (root / "postgresql.conf").chmod(0o640)
    return root


def listing(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """{relative path: (mode, content or None for a directory)}."""
    return {
        str(path.relative_to(root)): (
            stat.S_IMODE(path.lstat().st_mode),
            None if path.is_dir() else path.read_bytes(),
        )
        for path in root.rglob("*")
    }


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path]:
    source = a_tree(tmp_path / "source")
    target = tmp_path / "tree.pack"
    cluster_pack.pack(source, target)
    return source, target


@pytest.mark.parametrize("in_child", [False, True], ids=["in process", "in a child"])
def test_a_tree_comes_back_with_the_same_files_bytes_and_modes(tmp_path, packed, in_child):
    source, pack = packed
    target = tmp_path / "target"
    target.mkdir()
    (cluster_pack.unpack_in_child if in_child else cluster_pack.unpack)(pack, target)
    assert listing(target) == listing(source)
    segment = target / "pg_wal" / "segment"
    assert segment.stat().st_size == (source / "pg_wal" / "segment").stat().st_size
    assert pack.stat().st_size < (1 << 20)  # the zero tail is not stored, only its length


def test_the_version_file_comes_last_and_a_member_can_be_read_alone(packed):
    _, pack = packed
    manifest = cluster_pack.read_manifest(pack)
    assert manifest["entries"][-1][1] == "PG_VERSION"
    kinds = {entry[1]: entry[0] for entry in manifest["entries"]}
    assert kinds["base"] == kinds["base/1"] == "d" and kinds["global/pg_control"] == "f"
    assert cluster_pack.member(pack, manifest, "PG_VERSION") == b"18\n"
    assert cluster_pack.member(pack, manifest, "postgresql.conf") == b"port = 5432\n"
    assert cluster_pack.member(pack, manifest, "no/such/file") is None


def test_a_truncated_or_foreign_file_is_not_a_pack(tmp_path, packed):
    _, pack = packed
    cut = tmp_path / "cut.pack"
    cut.write_bytes(pack.read_bytes()[:-100])
    with pytest.raises(PackError, match="its manifest says"):
        cluster_pack.read_manifest(cut)
    foreign = tmp_path / "foreign"
    foreign.write_text("not a pack\n")
    with pytest.raises(PackError, match="not a cluster pack"):
        cluster_pack.read_manifest(foreign)
    damaged = tmp_path / "damaged.pack"
    damaged.write_bytes(MAGIC + b"{not json\n")
    with pytest.raises(PackError, match="damaged manifest"):
        cluster_pack.read_manifest(damaged)


def test_a_path_outside_the_tree_is_refused_before_anything_is_written_there(tmp_path):
    entries = [["f", "../escaped", 0o600, 1, 1]]
    pack = tmp_path / "evil.pack"
    pack.write_bytes(MAGIC + json.dumps({"entries": entries, "data": 1}).encode() + b"\nx")
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(PackError, match="outside the tree"):
        cluster_pack.unpack(pack, target)
    assert not (tmp_path / "escaped").exists()


def test_the_child_fails_with_its_one_line_reason(tmp_path, packed):
    _, pack = packed
    target = tmp_path / "target"
    target.mkdir()
    (target / "base").mkdir()  # already there: the unpack refuses to write over anything
    with pytest.raises(PackError, match=r"File exists: base$"):
        cluster_pack.unpack_in_child(pack, target)


def test_only_files_and_directories_can_be_packed(tmp_path):
    source = a_tree(tmp_path / "source")
    os.mkfifo(source / "a-fifo")
    with pytest.raises(PackError, match="neither a file nor a directory"):
        cluster_pack.pack(source, tmp_path / "tree.pack")
