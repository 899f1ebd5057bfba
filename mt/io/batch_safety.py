"""What `mt batch` may read and write on a shared file system, and who translates an article.

* Folders: an output folder equal to or containing the input folder is refused (its outputs
  would become inputs of the next run); an output folder *inside* the input folder is fine, the
  listing leaves it out.
* Listing: only regular files inside IN_DIR are read. A file symlink is followed only when its
  target lies inside IN_DIR; links pointing outside, dangling links, FIFOs, devices and sockets
  with an article's extension are reported, never opened (a FIFO would block the run). Folder
  symlinks are not followed (as ``find`` does not), hidden names are ignored.
* Claims: one ``.NAME.claim`` file per article beside its outputs, held with ``flock`` while
  the article is translated, so several runs on the same folders translate each article once.
  The kernel drops the lock when its owner dies (kill -9 included), so a dead run's claim is
  taken over at once; the file records pid and host only for whoever looks at it.
* Outputs: leftovers of a killed atomic write (``.NAME.*.part``) are removed by the next claim
  holder, and the partial outputs of an article whose writing failed are removed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mt.errors import InputError
from mt.io.formats import write_atomic

try:
    import fcntl
except ImportError:  # Windows: no claims (one run per folder there)
    fcntl = None

#: Extensions `mt batch` reads from a folder; the document formats add theirs (mt.io.documents).
TEXT_SUFFIXES = (".txt",)


@dataclass(frozen=True)
class InputFile:
    """A regular file to translate: its name relative to IN_DIR, the real path to open, its size."""

    name: str
    path: Path
    size: int


@dataclass(frozen=True)
class Rejected:
    """An entry with an article's name that is not read, and why."""

    name: str
    reason: str


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """Refuse an output folder that is the input folder or contains it."""
    source, target = Path(in_dir).resolve(), Path(out_dir).resolve()
    if source == target:
        raise InputError(f"{out_dir}: the output folder is the input folder; choose another OUT_DIR")
    if source.is_relative_to(target):
        raise InputError(f"{out_dir}: the output folder contains the input folder {in_dir}; "
                         "its outputs would be read as articles; choose another OUT_DIR")


def special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def walk_inputs(in_dir: Path, out_dir: Path, suffixes=TEXT_SUFFIXES) -> Iterator[InputFile | Rejected]:
    """Every entry under in_dir whose name ends with one of ``suffixes``, in sorted path order,
    as an InputFile to read or a Rejected to report. A generator: the folder is never held in
    memory, only the directory being listed."""
    root = Path(in_dir).resolve()
    skip = Path(out_dir).resolve()
    suffixes = tuple(suffix.lower() for suffix in suffixes)
    yield from _walk(root, root, skip, suffixes)


def _walk(folder: Path, root: Path, skip: Path, suffixes) -> Iterator[InputFile | Rejected]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        yield Rejected(_relative(folder, root) + "/", f"cannot list this folder ({error.strerror})")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if path != skip:
                    yield from _walk(path, root, skip, suffixes)
                continue
        except OSError:
            pass
        if not entry.name.lower().endswith(suffixes):
            continue
        yield _classify(path, root)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def _classify(path: Path, root: Path) -> InputFile | Rejected:
    name = _relative(path, root)
    try:
        link = path.is_symlink()
        target = Path(os.path.realpath(path)) if link else path
        info = os.stat(target)
    except OSError:
        return Rejected(name, "a dangling symbolic link (not read)" if link else "vanished while listing")
    if link and not target.is_relative_to(root):
        return Rejected(name, f"a symbolic link to {target}, outside the input folder (not read)")
    if not stat.S_ISREG(info.st_mode):
        return Rejected(name, f"{special_kind(info.st_mode)}, not a regular file (not read)")
    return InputFile(name, target, info.st_size)


@contextmanager
def open_listed(path: Path, name: str):
    """A listed input opened without blocking and checked again to be a regular file (it may have
    been swapped for a FIFO or a link since the listing); read errors become InputErrors."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{name}: vanished before it was read") from None
    except OSError as error:
        raise InputError(f"{name}: cannot open ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{name}: not a regular file (not read)")
        try:
            yield handle
        except OSError as error:
            raise InputError(f"{name}: cannot read ({error.strerror})") from None


def read_input(path: Path, name: str) -> bytes:
    """The bytes of a listed input (see :func:`open_listed`)."""
    with open_listed(path, name) as handle:
        return handle.read()


def claim_path(stem: str | Path) -> Path:
    stem = Path(stem)
    return stem.with_name(f".{stem.name}.claim")


def _take(path: Path) -> int | None:
    """An fd holding the lock on ``path`` (created if need be), or None when another live
    process holds it. The inode check closes the race with a holder that unlinks on release."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed it after we opened it: take the new one


@contextmanager
def claim(stem: str | Path) -> Iterator[bool]:
    """Hold the article whose outputs start with ``stem``: yields True when this process has it,
    False when another live run is translating it. OSError when the output folder cannot take
    the claim file (read-only, full, permission)."""
    if fcntl is None:
        yield True
        return
    path = claim_path(stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _take(path)
    if fd is None:
        yield False
        return
    try:
        try:  # for people only: the lock, not this text, says whether the owner lives
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} host {socket.gethostname()}\n".encode())
        except OSError:
            pass  # a full disk still lets us hold the (empty) claim
        yield True
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


def remove_leftovers(outputs: list[Path]) -> None:
    """Temporary files of atomic writes a killed run left behind (only the claim holder calls this)."""
    for output in outputs:
        for leftover in output.parent.glob(f".{_glob_escape(output.name)}.*.part"):
            leftover.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in name)


def discard_partial(outputs: list[Path]) -> None:
    """After a failed write: the outputs of an article that is not done are of no use (and take
    the space a full disk lacks); removing them keeps "done" meaning "all outputs present"."""
    for output in outputs:
        try:
            output.unlink(missing_ok=True)
        except OSError:
            pass


def describe_os_error(error: OSError) -> str:
    """"cannot write OUT/a.tmx: No space left on device" - one line, no traceback."""
    where = f" {error.filename}" if error.filename else ""
    return f"cannot write{where}: {error.strerror or error}"


# -- what "done" means: the outputs, and a marker saying from what they were made ----------------

#: Beside the outputs of NAME: NAME.meta, written last. Its suffix is no longer than ".en.txt", so
#: an id whose outputs fit in a file name today still fits with its marker.
MARKER_SUFFIX = ".meta"


def marker_path(stem: str | Path) -> Path:
    stem = Path(stem)
    return stem.with_name(stem.name + MARKER_SUFFIX)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path, name: str) -> str:
    """The source's SHA-256, read in 1 MiB chunks with the same care as :func:`read_input`."""
    digest = hashlib.sha256()
    with open_listed(path, name) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class DoneCheck:
    """Whether an article's outputs are current: all present, and its marker names the same
    source hash and (when ``model`` is known: the local batch) the same model and settings.
    ``force``: nothing is done (every article is translated again; its sentences still come
    from the cache)."""

    model: str | None = None
    force: bool = False

    def __call__(self, outputs: list[Path], digest, size: int | None = None) -> bool:
        """``digest``: the source's hash, or a function computing it (called only when the
        marker exists and, where ``size`` is given, records that size)."""
        if self.force:
            return False
        try:
            marker = json.loads(marker_path(_stem_of(outputs)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(marker, dict) or (self.model is not None and marker.get("model") != self.model):
            return False
        if size is not None and marker.get("source_bytes") != size:
            return False
        if not all(path.exists() for path in outputs):
            return False
        return marker.get("source_sha256") == (digest() if callable(digest) else digest)


def _stem_of(outputs: list[Path]) -> Path:
    first = Path(outputs[0])
    return first.with_name(first.name[: -len(".jsonl")])


def write_marker(outputs: list[Path], digest: str, size: int, model: str | None) -> None:
    """Written last, after every output: its presence with a matching hash means done."""
    record = {"source_sha256": digest, "source_bytes": size, "model": model}
    write_atomic(marker_path(_stem_of(outputs)), json.dumps(record, ensure_ascii=False) + "\n")


def remove_marker(outputs: list[Path]) -> None:
    """Before an article is written again: until the new marker, its outputs are not done."""
    marker_path(_stem_of(outputs)).unlink(missing_ok=True)
