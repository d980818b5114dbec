"""User-facing errors: the CLI prints these as one line, without a traceback."""


import errno


class BnnbenchError(Exception):
    """A problem with the user's input: the message names the problem and the fix."""


ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
               errno.ENOTDIR, errno.EEXIST, errno.EISDIR}


def describe_os_error(exc: OSError) -> str:
    """One line for a fault of the machine (full disk, read-only or wrong path): the path, what
    happened and the fix. Finished records are never touched by such a fault (writes are
    atomic), so the line says so."""
    where = exc.filename or "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device of {where} ({exc.strerror}): free some space and "
                "rerun the same command; finished records and the last checkpoint are kept")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"cannot write {where} ({exc.strerror}): choose another --out, or make it "
                "writable")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return f"{where} is not a usable folder ({exc.strerror}): choose another --out"
    return f"{where}: {exc.strerror or exc}"
