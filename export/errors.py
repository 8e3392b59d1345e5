"""User-facing errors and the CLI wrapper that turns them into one line and exit 2.

The one home of these for every CLI of the project. It lives in `export`, the lowest
layer whose TF-free deploy tools (`export.encode`) need it, and imports nothing heavy.
"""

import argparse
import errno
import os
import sys

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class UsageError(ValueError):
    """A user mistake (bad flag, missing file, wrong shape): one clear line.

    The message says what is wrong, where, and how to fix it. CLIs print it as
    `error: <message>` on stderr and exit with code 2, without a traceback.
    """


class DataError(UsageError):
    """A dataset that cannot be found, read or decoded."""


class RunFailed(RuntimeError):
    """A job that started but could not finish (e.g. the loss became NaN): exit 1."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes raise UsageError (one line, exit 2) instead of
    printing the whole usage block."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


# What the machine, not the user's input, refused: each is one line (what, how to go on).
SYSTEM_LIMITS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file-size limit reached (ulimit -f)",
}
RESUME_HINT = "run the same command again to resume (finished work is kept)"


def system_error_message(error):
    """One line for an error that is no mistake of the user's but that they can act on:
    a full disk, a quota, a file-size limit (also when TensorFlow or h5py wrap the
    OSError in an exception of their own), or a symbolic link where none may be.
    None for anything else.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        code = error.errno if isinstance(error, OSError) else None
        for number, what in SYSTEM_LIMITS.items():
            if code == number or os.strerror(number) in str(error):
                where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
                return f"{what}{where}: make room (or raise the limit), then {RESUME_HINT}."
        if code == errno.ELOOP:
            if error.filename:  # os.open(..., O_NOFOLLOW) met a link
                return (f"{error.filename} is a symbolic link; files are never read or written "
                        "through links here: remove the link or choose another path.")
            return error.strerror or str(error)
        error = error.__cause__ or error.__context__
    return None


def run_cli(main, argv=None, prog=None):
    """Runs `main(argv)` and exits: 0 on success; one line on stderr and 2 on a
    UsageError or a system limit (`system_error_message`), 1 on a RunFailed, 130 on
    Ctrl-C. None of those prints a traceback.

    Args:
        main: callable taking the argument list and returning an exit code or None.
        argv: list of str or None (`sys.argv[1:]`).
        prog: str or None. Program name for the message prefix.
    """
    prefix = f"{prog}: " if prog else ""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except (UsageError, RunFailed) as error:
        message = " ".join(str(error).split())
        print(f"{prefix}error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILED)
    except KeyboardInterrupt:
        # Every write is atomic and a lock dies with its process: there is nothing to undo.
        print(f"{prefix}interrupted: {RESUME_HINT}.", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # pylint: disable=broad-except
        message = system_error_message(error)
        if message is None:
            raise
        print(f"{prefix}error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.exit(code or 0)
