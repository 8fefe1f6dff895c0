"""Writing files atomically; imports only the standard library.

Everything graphcomp writes (generated modules, pictures, checkpoints) goes
through ``atomic``: a crash or an error mid-write leaves the old file (or
none) in place, never a half-written one.
"""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic(path, suffix="", text=False):
    """Write ``path`` through a temp file beside it: yields the open temp file; when the block ends
    without an error the file is flushed to disk, given the mode a new file gets (0o666 less the
    umask) and renamed over ``path``; on an error it is removed and ``path`` is left as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".graphcomp-", suffix=suffix)
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _sync_directory(directory)


def _sync_directory(directory):
    """Flush the rename to disk where the OS allows opening a directory (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
