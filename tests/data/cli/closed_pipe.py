#!/usr/bin/python3
"""Runs a command whose standard output is a pipe nobody reads any more (the
reading end is closed before the command starts), as `tool | head -0` would
be if head had already exited; no race with a reader.

    /usr/bin/python3 closed_pipe.py default|ignore COMMAND ARG...

default: the command gets SIGPIPE as usual; ignore: SIGPIPE is ignored, as
under some shells, daemons and Python parents, so a write fails with EPIPE.
Exits with the command's exit status; when a signal killed the command,
prints "killed by signal N (NAME)" and exits with 128 + N as a shell does.
"""
import os
import signal
import subprocess
import sys


def main():
    mode, cmd = sys.argv[1], sys.argv[2:]
    if mode not in ("default", "ignore") or not cmd:
        sys.exit(__doc__)
    read_end, write_end = os.pipe()
    os.close(read_end)
    # Python itself ignores SIGPIPE; restore_signals gives the child the default.
    proc = subprocess.run(cmd, stdout=write_end, restore_signals=(mode == "default"))
    os.close(write_end)
    if proc.returncode < 0:
        sig = -proc.returncode
        print(f"killed by signal {sig} ({signal.Signals(sig).name})")
        sys.exit(128 + sig)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
