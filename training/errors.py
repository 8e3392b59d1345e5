"""User-facing errors and the CLI wrapper that turns them into one line and exit 2.

This module imports nothing heavy: the TF-free deploy tools use it too.
"""

import argparse
import sys

EXIT_USAGE = 2
EXIT_FAILED = 1


class UsageError(ValueError):
    """A user mistake (bad flag, missing file, wrong shape): one clear line.

    The message says what is wrong, where, and how to fix it. CLIs print it as
    `error: <message>` on stderr and exit with code 2, without a traceback.
    """


class DataError(UsageError):
    """A dataset that cannot be found, read or decoded."""


class RunFailed(RuntimeError):
    """A run that started but could not finish (e.g. the loss became NaN): exit 1."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes raise UsageError (one line, exit 2) instead of
    printing the whole usage block."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def run_cli(main, argv=None, prog=None):
    """Runs `main(argv)` and exits: 0 on success, 2 with one line on a UsageError,
    1 with one line on a RunFailed.

    Args:
        main: callable taking the argument list and returning an exit code or None.
        argv: list of str or None (`sys.argv[1:]`).
        prog: str or None. Program name for the message prefix.
    """
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except (UsageError, RunFailed) as error:
        message = " ".join(str(error).split())
        prefix = f"{prog}: " if prog else ""
        print(f"{prefix}error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILED)
    sys.exit(code or 0)
