"""Fault injection for the tests: run a module as `python -m MODULE ARGS...` would, and
stop it with a signal just before its Nth rename.

    python -m tests.killing N MODULE [ARGS...]

Every atomic write ends in a rename (`os.replace`), so a SIGKILL there is a kill -9 or a
power cut at a write boundary: the test then checks that the same command repairs what
the killed one left. The hook lives here, in the tests, and patches `os.replace` and
`os.rename` of this process only; the code under test knows nothing of it.
"""

import os
import runpy
import signal
import sys


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


def main(argv):
    n, module, *args = argv
    signal_at_rename(int(n))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
