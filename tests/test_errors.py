"""`export.errors.run_cli`: one line and an exit code for everything that is not a bug."""

import errno

import pytest

from export.errors import RunFailed
from export.errors import UsageError
from export.errors import run_cli


def _run(error):
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [], prog="tool")
    return exit_info.value.code


class _WrappedByTensorFlow(Exception):
    """What TensorFlow or h5py raise around a failed write: no errno, only the text."""


@pytest.mark.parametrize("error, code, line", [
    (UsageError("bad\n  flag"), 2, "tool: error: bad flag"),
    (RunFailed("diverged"), 1, "tool: error: diverged"),
    (KeyboardInterrupt(), 130, "tool: interrupted: run the same command again to resume (finished work is kept)."),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/r/model.keras"), 2,
     "tool: error: no space left on the device writing /runs/r/model.keras: make room (or raise the "
     "limit), then run the same command again to resume (finished work is kept)."),
    (OSError(errno.EFBIG, "File too large"), 2,
     "tool: error: file-size limit reached (ulimit -f): make room (or raise the limit), then run the "
     "same command again to resume (finished work is kept)."),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), 2,
     "tool: error: disk quota exceeded: make room (or raise the limit), then run the same command "
     "again to resume (finished work is kept)."),
    (_WrappedByTensorFlow("write failed: No space left on device [Op:WriteFile]"), 2,
     "tool: error: no space left on the device: make room (or raise the limit), then run the same "
     "command again to resume (finished work is kept)."),
    (OSError(errno.ELOOP, "Too many levels of symbolic links", "/runs/r/history.csv"), 2,
     "tool: error: /runs/r/history.csv is a symbolic link; files are never read or written through "
     "links here: remove the link or choose another path."),
])
def test_one_line_and_its_exit_code(capsys, error, code, line):
    assert _run(error) == code
    assert capsys.readouterr().err == line + "\n"


def test_a_limit_met_while_handling_another_error_is_found_in_the_chain(capsys):
    try:
        try:
            raise OSError(errno.EFBIG, "File too large")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as outer:
        error = outer
    assert _run(error) == 2
    assert "file-size limit reached" in capsys.readouterr().err


@pytest.mark.parametrize("error", [OSError(errno.EIO, "Input/output error"), ValueError("a bug")])
def test_anything_else_keeps_its_traceback(error):
    with pytest.raises(type(error)):
        _run(error)
