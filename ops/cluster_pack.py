"""A directory tree (an initdb cluster) as one file, and back: the initdb template's format.

A cluster is ~1,300 files. Copied file by file, a cold page cache makes the copy read them from
all over the disk (here 0.33-0.45 s against 0.11 s for one file of the same bytes), and a copy
in this process competes for the GIL with whatever else `up` runs meanwhile. So the template is
one file, read in one go, and unpacked by a child interpreter (`unpack_in_child`).

Layout: a first line `homer-cluster-pack 1`, a second line of JSON (the manifest), then the
files' bytes, in manifest order. The manifest is `{"entries": [...], "data": <bytes that follow>}`
with an entry `["d", path, mode]` per directory (before what it holds) and `["f", path, mode,
size, stored]` per regular file: `stored` bytes follow, the rest of `size` is a run of zeros left
as a hole (a WAL segment is mostly zeros). The top-level `PG_VERSION` comes last, so a half
unpacked directory never looks like a cluster. This module needs only the standard library: the
child runs it by path, with `python -I -S`.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

MAGIC = b"homer-cluster-pack 1\n"
UNPACK_TIMEOUT_S = 120.0
_SPARSE_FROM = 64 * 1024  # files this large keep their trailing zeros as a hole


class PackError(OSError):
    """A pack that cannot be read, or a tree that cannot be packed or unpacked."""


def pack(source: Path, target: Path) -> None:
    """Write the tree under `source` (directories and regular files only) to the file `target`."""
    entries: list[list[object]] = []
    blobs: list[bytes] = []
    _walk(source, "", entries, blobs)
    manifest = {"entries": entries, "data": sum(len(blob) for blob in blobs)}
    with open(target, "wb") as out:
        out.write(MAGIC)
        out.write(json.dumps(manifest, separators=(",", ":")).encode() + b"\n")
        for blob in blobs:
            out.write(blob)
        out.flush()
        os.fsync(out.fileno())


def _walk(directory: Path, prefix: str, entries: list[list[object]], blobs: list[bytes]) -> None:
    with os.scandir(directory) as listing:
        children = sorted(listing, key=lambda entry: (not prefix and entry.name == "PG_VERSION", entry.name))
    for child in children:
        path, info = f"{prefix}{child.name}", child.stat(follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            entries.append(["d", path, stat.S_IMODE(info.st_mode)])
            _walk(Path(child.path), f"{path}/", entries, blobs)
        elif stat.S_ISREG(info.st_mode):
            data = Path(child.path).read_bytes()
            kept = data.rstrip(b"\0") if len(data) >= _SPARSE_FROM else data
            entries.append(["f", path, stat.S_IMODE(info.st_mode), len(data), len(kept)])
            blobs.append(kept)
        else:
            raise PackError(f"{child.path} is neither a file nor a directory")


def read_manifest(source: Path) -> dict:
    """The manifest of the pack `source`, checked against the file's length; PackError if it is not
    a whole pack of this format."""
    try:
        with open(source, "rb") as handle:
            magic, line = handle.readline(len(MAGIC)), handle.readline()
            offset = handle.tell()
            length = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise PackError(f"{source}: {error.strerror or error}") from None
    if magic != MAGIC:
        raise PackError(f"{source} is not a cluster pack of this format")
    try:
        manifest = json.loads(line)
        entries, data = manifest["entries"], manifest["data"]
        stored = sum(entry[4] for entry in entries if entry[0] == "f")
    except (ValueError, KeyError, IndexError, TypeError):
        raise PackError(f"{source} has a damaged manifest") from None
    if stored != data or offset + data != length:
        raise PackError(f"{source} is {length} bytes; its manifest says {offset + data}")
    return manifest


def member(source: Path, manifest: dict, path: str) -> bytes | None:
    """The stored bytes of the file `path` in the pack `source` (its manifest given), or None."""
    offset = os.path.getsize(source) - manifest["data"]
    for entry in manifest["entries"]:
        if entry[0] == "f" and entry[1] == path:
            with open(source, "rb") as handle:
                handle.seek(offset)
                return handle.read(entry[4])
        offset += entry[4] if entry[0] == "f" else 0
    return None


def unpack(source: Path, target: Path, uid: int = -1, gid: int = -1) -> None:
    """Recreate the packed tree inside the existing, empty directory `target`, owned by uid:gid
    (-1: unchanged). PackError on a damaged pack or a path outside `target`; OSError as it comes."""
    manifest = read_manifest(source)
    with open(source, "rb") as handle:
        handle.seek(os.fstat(handle.fileno()).st_size - manifest["data"])  # the bytes follow the header
        data = memoryview(handle.read())
    if len(data) != manifest["data"]:
        raise PackError(f"{source} changed while it was read")
    umask = os.umask(0)  # read it: a mode it takes nothing from needs no chmod after the create
    os.umask(umask)
    root = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        position = 0
        for kind, path, mode, *sizes in manifest["entries"]:
            if path.startswith("/") or ".." in path.split("/"):
                raise PackError(f"{source} names a path outside the tree: {path!r}")
            if kind == "d":
                os.mkdir(path, mode, dir_fd=root)
                if mode & umask:
                    os.chmod(path, mode, dir_fd=root)
                if uid != -1 or gid != -1:
                    os.chown(path, uid, gid, dir_fd=root)
                continue
            size, stored = sizes
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=root)
            try:
                written = 0
                while written < stored:
                    written += os.write(descriptor, data[position + written : position + stored])
                if size > stored:
                    os.ftruncate(descriptor, size)
                if mode & umask:
                    os.fchmod(descriptor, mode)
                if uid != -1 or gid != -1:
                    os.fchown(descriptor, uid, gid)
            finally:
                os.close(descriptor)
            position += stored
    finally:
        os.close(root)


def unpack_in_child(source: Path, target: Path, uid: int = -1, gid: int = -1) -> None:
    """`unpack` in a child interpreter: the unpacking holds no GIL of this process, so the threads
    that `up` runs meanwhile (the migrations' import) cannot slow it. PackError with the child's
    own message if it fails; interrupted, the child is killed and waited for before this raises."""
    finish_unpack(start_unpack(source, target, uid, gid), source)


def start_unpack(source: Path, target: Path, uid: int = -1, gid: int = -1) -> subprocess.Popen[str]:
    """The child interpreter of `unpack_in_child`, started and not waited for (`finish_unpack`)."""
    argv = [sys.executable, "-I", "-S", __file__, str(source), str(target), str(uid), str(gid)]
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def finish_unpack(child: subprocess.Popen[str], source: Path) -> None:
    """Wait for a `start_unpack` child (killed if this is interrupted or it overruns); PackError
    with the child's own message if it failed."""
    try:
        _, errors = child.communicate(timeout=UNPACK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill(child)
        raise PackError(f"unpacking {source} took over {UNPACK_TIMEOUT_S:.0f} s") from None
    except BaseException:
        _kill(child)
        raise
    if child.returncode != 0:
        lines = errors.strip().splitlines() or [
            f"unpacking {source} failed with exit code {child.returncode}"
        ]
        raise PackError(lines[-1])


def _kill(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.communicate()


def _main(argv: list[str]) -> int:
    source, target, uid, gid = argv
    os.umask(0)  # the modes are the pack's own
    try:
        unpack(Path(source), Path(target), int(uid), int(gid))
    except OSError as error:
        print(f"{error.strerror or error}: {error.filename}" if error.filename else error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
