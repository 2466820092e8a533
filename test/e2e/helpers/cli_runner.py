"""The real `openstack` and `nova` CLIs, each command in a process of its own, without paying
the clients' imports (seconds) for every command.

This process imports the clients once, then forks a child per command: the child starts from the
state a fresh `openstack` process has after its imports (nothing left over from an earlier
command), takes the command's argv, environment, working directory and stdin, and runs the console
script's own function (`openstackclient.shell.main`, `novaclient.shell.main`), its stdout and stderr
going to files read back here.
Protocol: one JSON object per line on stdin, {"prog", "args", "env", "cwd", "input", "timeout"}
(seconds); one answer per line on stdout, {"code", "stdout", "stderr", "timedOut"}.
"""
import json
import os
import select
import signal
import sys
import tempfile

import novaclient.shell
import openstackclient.shell

MAINS = {"openstack": openstackclient.shell.main, "nova": novaclient.shell.main}

# Commands whose runs import what most commands import (plugins, API modules), against nothing.
WARM_UP = [
    ("openstack", ["server", "list"]),
    ("openstack", ["image", "list"]),
    ("openstack", ["project", "list"]),
    ("openstack", ["flavor", "list"]),
    ("openstack", ["keypair", "list"]),
    ("nova", ["list"]),
]
NOWHERE = {"OS_AUTH_URL": "http://127.0.0.1:9/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_NAME": "p",
           "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}


def child(req, out_path, err_path):
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    stdin_r, stdin_w = os.pipe()
    os.write(stdin_w, (req.get("input") or "").encode())
    os.close(stdin_w)
    os.dup2(stdin_r, 0)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    os.environ.clear()
    os.environ.update(req["env"])
    if req.get("cwd"):
        os.chdir(req["cwd"])
    args = req["args"]
    sys.argv = [req["prog"]] + args
    code = 0
    try:
        code = MAINS[req["prog"]](args) or 0
    except SystemExit as e:
        if isinstance(e.code, int):
            code = e.code
        elif e.code is not None:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    if req.get("modules"):
        with open(req["modules"], "w") as f:
            f.write("\n".join(sys.modules))
    os._exit(code)


def call(req):
    with tempfile.TemporaryDirectory(prefix="skiff-cli-") as d:
        out_path, err_path = os.path.join(d, "out"), os.path.join(d, "err")
        pid = os.fork()
        if pid == 0:
            try:
                child(req, out_path, err_path)
            finally:
                os._exit(70)
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], req.get("timeout") or 90)
        timed_out = not ready
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(status)
        read = lambda p: open(p, "rb").read().decode("utf-8", "replace") if os.path.exists(p) else ""
        return {"code": None if timed_out else code, "stdout": read(out_path), "stderr": read(err_path), "timedOut": timed_out}


def warm_up():
    """Imports here, once, the modules a command imports only when it runs (its plugins)."""
    import importlib

    with tempfile.TemporaryDirectory(prefix="skiff-cli-") as d:
        names = set()
        for prog, args in WARM_UP:
            path = os.path.join(d, "modules")
            call({"prog": prog, "args": args, "env": NOWHERE, "modules": path, "timeout": 60})
            names.update(open(path).read().split())
    for name in sorted(names - set(sys.modules)):
        try:
            importlib.import_module(name)
        except Exception:
            pass


warm_up()
for line in sys.stdin:
    answer = call(json.loads(line))
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
