"""Atomic writes on the TensorFlow side (`irmae_keras.staging`'s files; its directory
swap is tested with the run directory's recovery in test_rundir.py), and the tests' own
fault injection (`tests/killing.py`)."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys

import keras
import pytest

from irmae_keras.staging import atomic_path
from irmae_keras.staging import current_umask
from irmae_keras.staging import save_model_atomic
from irmae_keras.staging import write_json_atomic
from tests.helpers import within_seconds
from tests.killing import WarmInterpreter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_atomic_path_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(target.parent)
        assert tmp.endswith(".txt") and not target.exists()
        with open(tmp, "w") as f:
            f.write("new")
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["out.txt"]


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    from export.atomic import staged_directory
    from export.atomic import write_file_atomic

    with atomic_path(tmp_path / "a.txt") as tmp:
        open(tmp, "w").write("x")
    write_file_atomic(str(tmp_path / "b.bin"), lambda handle: handle.write(b"y"))
    with staged_directory(str(tmp_path / "out")) as staging:
        open(os.path.join(staging, "c"), "w").write("z")
    mask = current_umask()
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o777 & ~mask


def test_atomic_path_refuses_a_linked_destination_and_leaves_both_files(tmp_path):
    (tmp_path / "outside.txt").write_text("precious")
    os.symlink(tmp_path / "outside.txt", tmp_path / "out.txt")
    with pytest.raises(OSError, match="out.txt is a symbolic link") as error:
        with atomic_path(tmp_path / "out.txt") as tmp:
            with open(tmp, "w") as handle:
                handle.write("new")
    assert error.value.errno == errno.ELOOP
    assert os.path.islink(tmp_path / "out.txt") and (tmp_path / "outside.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["out.txt", "outside.txt"]


def test_write_json_atomic_writes_sorted_indented_json_with_a_final_newline(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"b": 1, "a": [1.5, None]})
    text = (tmp_path / "a.json").read_text()
    assert text == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    assert json.loads(text) == {"a": [1.5, None], "b": 1}


def test_save_model_atomic_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    save_model_atomic(model, str(path))
    before = path.read_bytes()

    def broken_save(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_model_atomic(model, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.keras"]


# Two atomic writes of the TF-free writer (no TensorFlow to load: the child is quick),
# the second of them stopped before its rename.
_TWO_WRITES = """
import signal, sys
from export.atomic import write_file_atomic
from tests.killing import signal_at_rename

signal_at_rename(2, getattr(signal, sys.argv[2]))
for name in ("a", "b"):
    write_file_atomic(sys.argv[1] + "/" + name, lambda handle: handle.write(b"new"))
print("finished")
"""


@pytest.mark.parametrize("signum, returncode", [("SIGKILL", -9), ("SIGINT", -2)])
def test_the_fault_injection_stops_a_process_just_before_its_nth_rename(tmp_path, signum, returncode):
    (tmp_path / "b").write_bytes(b"old")
    result = subprocess.run([sys.executable, "-c", _TWO_WRITES, str(tmp_path), signum], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == returncode and "finished" not in result.stdout, result.stderr
    assert (tmp_path / "a").read_bytes() == b"new"  # the first rename happened
    assert (tmp_path / "b").read_bytes() == b"old"  # the second did not
    leftovers = sorted(set(os.listdir(tmp_path)) - {"a", "b"})
    # A kill leaves the writer's temporary file; Ctrl-C (KeyboardInterrupt) lets it clean up.
    assert len(leftovers) == (1 if signum == "SIGKILL" else 0), leftovers
    if leftovers:
        assert leftovers[0].startswith(".b.") and (tmp_path / leftovers[0]).read_bytes() == b"new"


def test_the_fault_injection_runs_a_module_as_python_m_does():
    """`python -m tests.killing N MODULE ARGS` is `python -m MODULE ARGS` until the Nth rename."""
    result = subprocess.run([sys.executable, "-m", "tests.killing", "1", "export.encode", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m export.encode"), result.stderr


def test_a_warm_interpreter_forks_each_killed_run_from_its_imports(tmp_path):
    """`WarmInterpreter.run(N, MODULE, ARGS)` is `python -m tests.killing N MODULE ARGS`
    in a child forked from one server: the kill, the exit code and the output are the
    child's, and the next run starts clean."""
    (tmp_path / "two_writes.py").write_text(
        "import sys\n"
        "from export.atomic import write_file_atomic\n"
        "for name in ('a', 'b'):\n"
        "    write_file_atomic(sys.argv[1] + '/' + name, lambda handle: handle.write(sys.argv[2].encode()))\n"
        "print('finished')\n"
        "sys.exit(int(sys.argv[2]))\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "b").write_bytes(b"old")
    with WarmInterpreter("export.atomic", env={"PYTHONPATH": str(tmp_path)}) as warm:
        killed = warm.run(2, "two_writes", data, 5)
        assert killed.returncode == -9 and "finished" not in killed.stdout, killed.stderr
        assert (data / "a").read_bytes() == b"5" and (data / "b").read_bytes() == b"old"
        finished = warm.run(3, "two_writes", data, 3)  # two renames: the kill at a third never comes
        assert (finished.returncode, finished.stdout) == (3, "finished\n"), finished.stderr
        assert (data / "b").read_bytes() == b"3"
        usage = warm.run(1, "export.encode", "--help")
        assert usage.returncode == 0 and usage.stdout.startswith("usage: python -m export.encode"), usage.stderr


def test_a_warm_interpreter_runs_python_c_in_the_environment_asked_and_ends_as_python_does():
    """`WarmInterpreter.python_c(CODE, ARGS, env=)` is `python -c CODE ARGS` with `env` added
    for that child only; an uncaught Ctrl-C ends the child as it ends a fresh Python."""
    with WarmInterpreter("export.atomic") as warm:
        shown = warm.python_c("import os, sys; print(os.environ.get('IRMAE_WARM_VALUE'), sys.argv[1:])", "a", 2,
                              env={"IRMAE_WARM_VALUE": "x"})
        assert (shown.returncode, shown.stdout) == (0, "x ['a', '2']\n"), shown.stderr
        unset = warm.python_c("import os; print(os.environ.get('IRMAE_WARM_VALUE'))")
        assert unset.stdout == "None\n"  # each child starts from the server's environment
        interrupted = warm.python_c("raise KeyboardInterrupt")
    fresh = subprocess.run([sys.executable, "-c", "raise KeyboardInterrupt"], capture_output=True, text=True,
                           timeout=60)
    assert interrupted.returncode == fresh.returncode == -signal.SIGINT
    assert interrupted.stderr.strip().splitlines()[-1] == fresh.stderr.strip().splitlines()[-1] == "KeyboardInterrupt"


def test_the_warm_interpreters_replies_are_read_line_by_line_however_they_arrive():
    """Two reply lines that arrive in one write are both read at once, without waiting for
    more bytes (a buffered readline and select() waited here); a line split across writes
    is joined; a closed pipe or a timeout gives None."""
    from tests.killing import _Lines

    read, write = os.pipe()
    try:
        lines = _Lines(read)
        os.write(write, b'{"pid": 7}\n{"returncode": 0}\n')
        assert lines.next(5) == b'{"pid": 7}'
        with within_seconds(5):
            assert lines.next(60) == b'{"returncode": 0}'  # already read: no wait
        assert lines.next(0.05) is None
        os.write(write, b"par")
        os.write(write, b"tial\n")
        assert lines.next(5) == b"partial"
        os.close(write)
        write = None
        assert lines.next(5) is None
    finally:
        os.close(read)
        if write is not None:
            os.close(write)


def test_a_warm_interpreter_runs_one_child_at_a_time():
    with WarmInterpreter("export.atomic") as warm:
        warm.start(0, "export.encode", "--help")
        with pytest.raises(RuntimeError, match="runs one child at a time: finish"):
            warm.start(0, "export.encode", "--help")
        assert warm.finish().returncode == 0
        assert warm.cli("export.encode", "--help").args == ["python", "-m", "export.encode", "--help"]
