"""Running dxctl against a harness Pipeline: the same environment as the
workers, plus STATUS_URL at the pipeline's status-checker."""

import json
import os
import subprocess

import harness


def dxctl(p, *args, timeout=180, stdin=None, **env):
    """Runs dxctl with args; returns (exit code, stdout, stderr) as text."""
    e = p.env("dxctl", LOG_LEVEL="error", **env)
    if "status-checker" in p.ports:
        e.setdefault("STATUS_URL", f"http://127.0.0.1:{p.ports['status-checker']}")
    res = subprocess.run(harness.worker_command("dxctl", args), env=e, input=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out, err = res.stdout.decode("utf-8", "replace"), res.stderr.decode("utf-8", "replace")
    with open(os.path.join(p.workdir, "dxctl.log"), "a") as f:
        f.write(f"$ dxctl {' '.join(args)}\n{out}{err}[exit {res.returncode}]\n")
    return res.returncode, out, err


def dxctl_json(p, *args, **env):
    """dxctl --json args: (exit code, the parsed first line or None, stderr)."""
    code, out, err = dxctl(p, "--json", *args, **env)
    try:
        doc = json.loads(out.splitlines()[0]) if out.strip() else None
    except ValueError:
        doc = None
    return code, doc, err
