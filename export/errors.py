"""User-facing errors and the CLI wrapper that turns them into one line and exit 2.

The one home of these for every CLI of the project. It lives in `export`, the lowest
layer whose TF-free deploy tools (`export.encode`) need it, and imports nothing heavy.
"""

import argparse
import contextlib
import os
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
    """A job that started but could not finish (e.g. the loss became NaN): exit 1."""


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


@contextlib.contextmanager
def native_stderr_silenced():
    """Discards what C++ code writes to fd 2 meanwhile (Python's own errors still show).

    TensorFlow's start-up logs (CUDA probing, oneDNN notices) bypass Python and
    TF_CPP_MIN_LOG_LEVEL; without this, every error line would follow a page of them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly():
    """Imports the library, and with it TensorFlow, with TensorFlow's C++ start-up
    noise kept off stderr. The library comes first: it sets TensorFlow's oneDNN
    default before TensorFlow starts (`irmae_keras.onednn`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        import irmae_keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs here, once
