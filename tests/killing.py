"""Fault injection for the tests: run a module as `python -m MODULE ARGS...` would, and
stop it with a signal just before its Nth rename.

    python -m tests.killing N MODULE [ARGS...]

Every atomic write ends in a rename (`os.replace`), so a SIGKILL there is a kill -9 or a
power cut at a write boundary: the test then checks that the same command repairs what
the killed one left. The hook lives here, in the tests, and patches `os.replace` and
`os.rename` of this process only; the code under test knows nothing of it.

A kill needs a process of its own, not a fresh interpreter: `WarmInterpreter` starts one
process that imports the modules under test once (TensorFlow, Keras, the exporters: most
of a short run's CPU time) and forks a child for each killed run. The child is a real
process, killed by a real SIGKILL at the rename; only the imports are shared. The same
server runs the command-line tests that need a process (its exit code, its stderr) but
not a fresh interpreter (`WarmInterpreter.cli`; the session's `warm_interpreter` fixture).
Tests of what a fresh interpreter does at start-up (its log lines, its oneDNN setting,
what it imports) keep `run_cli`.

    python -m tests.killing --serve MODULE...   (the server `WarmInterpreter` talks to)
"""

import importlib
import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings


def signal_at_rename(n, signum=signal.SIGKILL):
    """Makes this process send itself `signum` just before its `n`th call of
    `os.replace` or `os.rename` (counted together, from 1).

    SIGKILL ends the process there. A signal the process handles (SIGINT raises
    KeyboardInterrupt) interrupts it before that rename happens.
    """
    calls = [0]
    if signum == signal.SIGINT:
        # Ctrl-C as in a terminal, even where SIGINT came ignored (a job started with &).
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupted(rename):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == n:
                # In this thread and handled before it returns (os.kill may hand the signal
                # to another of TensorFlow's threads, and the rename would happen first).
                signal.raise_signal(signum)
            return rename(*args, **kwargs)

        return call

    os.replace = interrupted(os.replace)
    os.rename = interrupted(os.rename)


def changed_environment(environment, changes):
    """`environment` (a dict, changed in place and returned) with `changes` applied: each
    key set to its value, or removed where the value is None."""
    for key, value in (changes or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return environment


def main(argv):
    n, module, *args = argv
    signal_at_rename(int(n))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# --- the warm interpreter ----------------------------------------------------------------


def _exit_code(error):
    """The exit code Python gives a SystemExit (a message is printed, code 1)."""
    if error.code is None:
        return 0
    if isinstance(error.code, int):
        return error.code
    print(error.code, file=sys.stderr)
    return 1


def _run_child(request, replies_fd):
    """In the forked child: stdin from /dev/null, stdout and stderr into the request's
    files, the request's environment changes, then `main` as `python -m tests.killing`
    runs it, or the request's code as `python -c` runs it; never returns."""
    code = 1
    try:
        os.close(replies_fd)
        environment = changed_environment(dict(os.environ), request.get("env"))
        os.environ.clear()
        os.environ.update(environment)
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            opened = os.open(path, flags, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        # Ctrl-C as a terminal delivers it, even where the server came with SIGINT ignored
        # (a shell starts a background job's children so, and an ignored SIGINT survives
        # exec and fork): what a fresh interpreter started from a terminal installs.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # runpy's note that the module is already imported: it is, in the parent, on purpose.
        warnings.filterwarnings("ignore", message=".*found in sys.modules", category=RuntimeWarning)
        if "code" in request:
            sys.argv = ["-c", *request["args"]]
            exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
        else:
            main([str(request["kill_at"]), request["module"], *request["args"]])
        code = 0
    except SystemExit as error:
        code = _exit_code(error)
    except KeyboardInterrupt:
        # As Python ends on an uncaught Ctrl-C: the traceback, then death by SIGINT.
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 - reported as an uncaught exception would be
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - exiting with the code either way
                pass
        if code == -signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def serve(modules):
    """Imports `modules`, then answers each request line on stdin (JSON: kill_at, module or
    code, args, stdout, stderr, env) by forking a child that runs it, with two lines on
    stdout: the child's pid, then its exit code as subprocess reports one (-9 for a SIGKILL). This
    process itself runs nothing of TensorFlow's, so every child starts as a fresh one
    would after its imports."""
    for module in modules:
        importlib.import_module(module)
    replies_fd = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # a stray print cannot reach the replies
    replies = os.fdopen(replies_fd, "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request, replies_fd)
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


class _Lines:
    """The lines arriving on a pipe, read raw with os.read and split here: a buffered
    readline may pull two lines that arrived together into its buffer, and a select() for
    the second then waits for bytes already read."""

    def __init__(self, fd):
        self._fd, self._pending = fd, b""

    def next(self, timeout):
        """The next line (bytes, without its newline); None if none came within `timeout`
        seconds or the pipe closed first."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            ready = remaining > 0 and select.select([self._fd], [], [], remaining)[0]
            chunk = os.read(self._fd, 65536) if ready else b""
            if not chunk:
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line


def _as_command(result, *command):
    """`result` (a child's CompletedProcess) with its args written as `command` and the
    child's own arguments."""
    return subprocess.CompletedProcess([*command, *result.args[3:]], result.returncode, result.stdout,
                                       result.stderr)


class WarmInterpreter:
    """Command-line runs in processes forked from one that has imported `modules` once:
    `run(kill_at, module, *args)` is `run_cli("tests.killing", kill_at, module, *args)`
    and `cli(module, *args)` is `run_cli(module, *args)`, without the imports. One run at
    a time; close() (or `with`) ends the server."""

    def __init__(self, *modules, env=None):
        """`env`: added to the server's environment as `run_python` adds it."""
        from tests.helpers import REPO
        from tests.helpers import python_environment

        self._folder = tempfile.mkdtemp(prefix="warm-interpreter-")
        self._log = open(os.path.join(self._folder, "server.log"), "w+")
        self._process = subprocess.Popen([sys.executable, "-m", "tests.killing", "--serve", *modules],
                                         cwd=REPO, env=python_environment(env), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log)
        self._replies = _Lines(self._process.stdout.fileno())
        self._lock = threading.Lock()
        self._runs = 0
        self._child = None

    def _reply(self, timeout):
        """The server's next reply line, as JSON (a quick child's two lines come together)."""
        line = self._replies.next(timeout)
        if line is None:
            self._log.seek(0)
            raise RuntimeError(f"the warm interpreter did not answer in {timeout} s "
                               f"(exit code {self._process.poll()}); its log ends: {self._log.read()[-2000:]}")
        return json.loads(line)

    def start(self, kill_at, module, *args, timeout=600, env=None, code=None):
        """Starts `python -m tests.killing KILL_AT MODULE ARGS...` in a forked child and
        returns its pid (KILL_AT 0: no kill at a rename; the test may signal the pid
        itself); `finish` waits for it. One child at a time. `env` changes the child's
        environment as `run_python`'s does; with `code`, the child runs
        `python -c CODE ARGS...` instead (MODULE and KILL_AT unused)."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("a warm interpreter runs one child at a time: finish() the last one first")
        try:
            self._runs += 1
            out, err = (os.path.join(self._folder, f"{self._runs}.{name}") for name in ("out", "err"))
            argv = [str(arg) for arg in args]
            request = {"kill_at": int(kill_at), "module": module, "args": argv, "stdout": out, "stderr": err,
                       "env": dict(env or {})}
            if code is not None:
                request["code"] = code
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
            pid = self._reply(timeout)["pid"]  # the first waits for the imports
        except BaseException:
            self._lock.release()
            raise
        self._child = (pid, ["tests.killing", str(kill_at), module, *argv], out, err)
        return pid

    def finish(self, timeout=600):
        """The CompletedProcess of the child `start` started (returncode -9 where it was
        killed); SIGKILLs it if it has not ended in `timeout` seconds."""
        pid, argv, out, err = self._child
        try:
            returncode = self._reply(timeout)["returncode"]
        except RuntimeError:
            os.kill(pid, signal.SIGKILL)
            raise
        finally:
            self._child = None
            self._lock.release()
        with open(out) as stdout, open(err) as stderr:
            return subprocess.CompletedProcess(argv, returncode, stdout.read(), stderr.read())

    def run(self, kill_at, module, *args, timeout=600):
        """`start`, then `finish`: the CompletedProcess of `python -m tests.killing KILL_AT
        MODULE ARGS...` run in a forked child (returncode -9 where the kill happened)."""
        self.start(kill_at, module, *args, timeout=timeout)
        return self.finish(timeout)

    def python_c(self, code, *args, env=None, timeout=600):
        """`run_python("-c", code, *args, env=env)` in a forked child, the imports done."""
        self.start(0, "-c", *args, timeout=timeout, env=env, code=code)
        return _as_command(self.finish(timeout), "python", "-c", code)

    def cli(self, module, *args, timeout=600):
        """`run_cli(module, *args)` in a forked child: `python -m MODULE ARGS` with the
        imports already done (no kill)."""
        return _as_command(self.run(0, module, *args, timeout=timeout), "python", "-m", module)

    def close(self):
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()
        self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2:])
    else:
        main(sys.argv[1:])
