"""Output files that lose nothing: written whole through a temporary file beside them, or not at all.

Every spikec writer goes through ``atomic_write`` (or ``atomic_write_files`` for a file and its sidecar):

* the temporary name is short (``.spk-XXXXXXXX.tmp``, 17 characters) whatever the target's name, so any
  name the file system accepts can be written;
* it is created with mode ``0o666`` less the user's umask (the mode ``open()`` gives), not ``mkstemp``'s
  0600, written, flushed and ``fsync``-ed (a full disk that the kernel reports only on sync is caught),
  then renamed over the target;
* on any failure the temporary file (and any folder made for it) is removed and the target is left as it
  was; an ``OSError`` (full disk, read-only or permission-denied folder, a name too long) becomes an
  ``OutputError`` naming the file, the reason and the fix.

``write_hdf5`` builds an HDF5 file in memory and writes its bytes the same way: HDF5's own file driver
crashes the interpreter when the disk fills (h5py 3, a segmentation fault on close). ``save_npz`` writes
a reproducible ``.npz`` (fixed zip times, sorted names): identical arrays give identical bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from spikec.errors import OutputError, UsageError

Writer = Callable[[IO[bytes]], None]
TEMP_PREFIX, TEMP_SUFFIX = ".spk-", ".tmp"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: no wall clock in an output

_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "no permission to write there: write elsewhere or change the folder's permissions",
    errno.EPERM: "no permission to write there: write elsewhere or change the folder's permissions",
    errno.ENAMETOOLONG: "the name is too long for the file system: choose a shorter one",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "it is a folder: choose a file name",
}


def output_error(path: str | Path, err: OSError) -> OutputError:
    """``err`` from writing ``path`` as a one-line ``OutputError``: what, where and what to do."""
    reason = err.strerror or type(err).__name__
    advice = _ADVICE.get(err.errno or 0, "check the path and the disk")
    error = OutputError(f"{path}: cannot write ({reason}); {advice}")
    error.os_error = err
    return error


_SCRATCH_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder for work files (the files a subprocess reads and writes), removed afterwards. A full,
    read-only or forbidden temporary disk, met while the folder is made or used, is one ``OutputError``
    naming it and ``TMPDIR``, not an internal error."""
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield Path(tmp)
    except OSError as err:
        if err.errno not in _SCRATCH_ERRNOS:
            raise
        where = tempfile.gettempdir()
        error = OutputError(
            f"{where}: cannot write work files ({err.strerror}); free space there or set TMPDIR to a folder "
            "with room and write permission"
        )
        error.os_error = err
        raise error from err


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents (umask modes); the folders made, innermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    try:
        for made in reversed(missing):
            made.mkdir()
    except OSError:
        _remove_made(missing)
        raise
    return missing


def _remove_made(folders: Iterable[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def temp_path(folder: Path) -> Path:
    """A fresh short name in ``folder`` for a temporary file or directory (not created)."""
    return folder / f"{TEMP_PREFIX}{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _open_temp(folder: Path) -> tuple[Path, IO[bytes]]:
    """Create a temporary file in ``folder`` exclusively, mode 0o666 less the umask."""
    for _ in range(100):
        tmp = temp_path(folder)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return tmp, os.fdopen(fd, "wb")
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def _write_temp(folder: Path, write: Writer) -> Path:
    tmp, fh = _open_temp(folder)
    try:
        with fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_files(writes: Mapping[str | Path, Writer]) -> None:
    """Write several files as one: each ``write(fh)`` fills a temporary file; only when all are written are
    they renamed into place, in the order given (a sidecar before the file that names it). On failure no
    target changes and no temporary file stays; an ``OSError`` is raised as ``OutputError``."""
    done: dict[Path, Path] = {}
    made: list[Path] = []
    current: Path | None = None
    try:
        for path, write in writes.items():
            current = Path(path)
            if current.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(current))
            made += _make_parents(current.parent)
            done[current] = _write_temp(current.parent, write)
        for target, tmp in done.items():
            current = target
            os.replace(tmp, target)
    except BaseException as err:
        for tmp in done.values():
            tmp.unlink(missing_ok=True)
        _remove_made(made)
        if isinstance(err, OSError) and current is not None:
            raise output_error(current, err) from None
        raise


def atomic_write(path: str | Path, write: Writer) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path`` and rename it to ``path`` (see the module)."""
    atomic_write_files({path: write})


def write_bytes(path: str | Path, data: bytes) -> None:
    """``data`` to ``path``, atomically."""

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)


def write_text(path: str | Path, text: str) -> None:
    """``text`` (UTF-8) to ``path``, atomically."""
    write_bytes(path, text.encode("utf-8"))


DEFLATE_LEVEL = 1  # zlib's fastest: ~250 MB/s on weights with zero rows (a DenseNet's parts), 40x smaller


def integer_arrays(array: np.ndarray) -> bool:
    """Deflate integer arrays only: fixed-point fields are small integers in wide dtypes, with runs of zeros
    (4.3 GB of a DenseNet's int64 conv mantissas deflate to ~60 MB); float weights barely shrink."""
    return array.dtype.kind in "iub"


def npz_writer(arrays: Mapping[str, np.ndarray], *, compress: bool | Callable[[np.ndarray], bool]) -> Writer:
    """A writer of ``arrays`` as a reproducible ``.npz``: names sorted, zip times fixed, never pickled; each
    member deflated (at ``DEFLATE_LEVEL``) when ``compress`` is true or says so of its array."""

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w") as zf:
            for name in sorted(arrays):
                array = np.asarray(arrays[name])
                deflate = compress(array) if callable(compress) else compress
                info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                info._compresslevel = DEFLATE_LEVEL  # type: ignore[attr-defined]  # ZipInfo's level (3.11-3.13)
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    return write


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray], *, compress: bool = True) -> None:
    """``arrays`` as an ``.npz`` at ``path`` (the exact name, no added suffix), atomically and reproducibly;
    ``np.load`` reads it as it reads ``np.savez_compressed``'s."""
    atomic_write(path, npz_writer(arrays, compress=compress))


def hdf5_image(fill: Callable[[Any], None]) -> bytes:
    """The bytes of an HDF5 file that ``fill(h5py.File)`` writes, built in memory (no file is opened).

    h5py tracks no object times by default, so identical content gives identical bytes."""
    import h5py

    name = f"spikec-{secrets.token_hex(8)}.h5"  # the in-memory file's name only; nothing is written under it
    with h5py.File(name, "w", driver="core", backing_store=False) as f:
        fill(f)
        f.flush()
        return bytes(f.id.get_file_image())


def write_hdf5(path: str | Path, fill: Callable[[Any], None]) -> None:
    """An HDF5 file at ``path``: built in memory by ``fill(h5py.File)`` (``hdf5_image``), written atomically."""
    write_bytes(path, hdf5_image(fill))


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (the same path, a link to it, or a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def sir_sidecar(path: Path) -> Path | None:
    """The sidecar a ``.sir`` file names in its header (``sidecar "x.npz"``), else the default beside it
    if there is one (what ``load_sir`` reads); None for other files."""
    from spikec.errors import FileError
    from spikec.safe_read import open_file

    if path.suffix.lower() != ".sir":
        return None
    try:  # a regular file only, opened without blocking: a FIFO named .sir would hang a plain open()
        with open_file(path) as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except (FileError, OSError):  # the reader reports what the path is
        head = ""
    for line in head.splitlines()[:8]:
        words = line.strip().split(None, 1)
        if len(words) == 2 and words[0] == "sidecar":
            name = words[1].strip().strip('"')
            if name and Path(name).name == name:
                return path.parent / name
    default = path.with_suffix(".npz")
    return default if default.exists() else None


def model_files(path: str | Path) -> list[Path]:
    """The files a model reads: ``path``, and a ``.sir``'s sidecar."""
    path = Path(path)
    sidecar = sir_sidecar(path)
    return [path, *([sidecar] if sidecar is not None else [])]


def refuse_overwrite(option: str, outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """A ``UsageError`` when an output would replace one of the command's (existing) input files."""
    given = [Path(p) for p in inputs if Path(p).exists()]
    for out in map(Path, outputs):
        clash = next((p for p in given if same_file(out, p)), None)
        if clash is not None:
            raise UsageError(f"{option} {out}: that is an input of this command ({clash}); choose another {option}")
