#!/usr/bin/env python3
"""The deploy commands of the documentation work when pasted (issue 15).

Reads the shell blocks of README.md, docs/*.md and deploy/README.md and:
- runs every kubectl command line (each part of a line split on '&' and the
  first '|') against a Kubernetes API address on loopback where nothing
  listens: kubectl must get as far as connecting (or, for `kubectl
  kustomize`, succeed), which proves that its flags parse and that the
  folders it names exist; no cluster, no network;
- requires of every `kubectl logs` with a label selector `--tail=-1` (or it
  shows 10 lines a container), a namespace and `--prefix`;
- runs the rest of each `kubectl logs ... | grep trace | sort` line on
  prefixed log lines, out of order and mixed with another trace: it must give
  back exactly that trace's lines, in time order;
- requires every trace id in an example to be one the workers accept
  (32 hex characters, not all zero).

Needs kubectl and PyYAML (through test_consistency's Checks).
Usage: test_docs_commands.py --source-dir DIR [--kubectl PATH]
Prints one line per check and 'N passed, N failed'; exit 1 on any failure.
"""

import argparse
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile

from test_consistency import Checks

TRACE_ID = re.compile(r'"trace_id":\s*"([^"]*)"')
VALID_TRACE = re.compile(r"^[0-9a-f]{32}$")
PREFIXED_LOGS = [
    '[pod/status-checker-7c9/status-checker] {"ts": "2026-11-24T08:00:03.000Z", "trace_id": "TRACE", "msg": "status updated"}',
    '[pod/daily-checker-5d8/daily-checker] {"ts": "2026-11-24T08:00:01.000Z", "trace_id": "TRACE", "msg": "order-date published"}',
    '[pod/file-transformer-6b7/file-transformer] {"ts": "2026-11-24T08:00:00.500Z", "trace_id": "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0", "msg": "other run"}',
    '[pod/file-transformer-6b7/file-transformer] {"ts": "2026-11-24T08:00:02.000Z", "trace_id": "TRACE", "msg": "file ready"}',
]


def shell_lines(path):
    """The command lines of the file's ```sh blocks, continuations joined."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def kubeconfig(tmp):
    """A kubeconfig naming a loopback port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = os.path.join(tmp, "kubeconfig")
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: none, cluster: {{server: "https://127.0.0.1:{port}"}}}}]
users: [{{name: none, user: {{token: none}}}}]
contexts: [{{name: none, context: {{cluster: none, user: none}}}}]
current-context: none
""")
    return path


def kubectl_parts(line):
    """Each kubectl command of a line: split on '&' and ';', up to its first '|'."""
    for part in re.split(r"\s&\s|\s&$|;", line):
        part = part.split("|", 1)[0].strip()
        if part.startswith("kubectl ") or part.startswith("(cd ") and "kubectl " in part:
            yield part[part.index("kubectl "):]


def check_kubectl(c, kubectl, cfg, where, cmd, source_dir):
    if "<" in cmd or "$(" in cmd or "$" in cmd:
        return  # a placeholder or a variable the operator fills in
    args = shlex.split(cmd, comments=True)[1:]
    res = subprocess.run([kubectl, "--kubeconfig", cfg, "--request-timeout=2s", *args],
                         cwd=source_dir, capture_output=True, text=True, timeout=60)
    err = res.stderr.strip()
    connected = re.search(r"connection refused|dial tcp|Unable to connect|couldn't get current server", err)
    bad_flag = re.search(r"unknown flag|unknown shorthand|invalid argument|unknown command|must build at directory|"
                         r"no such file", err)
    c.check((res.returncode == 0 or connected) and not bad_flag,
            f"{where}: `{cmd[:90]}` parses and reaches the (absent) API server",
            err.splitlines()[-1] if err else f"exit {res.returncode}")


def is_logs(line):
    """Whether line runs `kubectl [flags] logs ...`."""
    return any(re.match(r"kubectl\s+(-\S+(\s+[^-\s]\S*)?\s+)*logs\s", cmd) for cmd in kubectl_parts(line))


def check_logs_line(c, where, line):
    cmd = line.split("|", 1)[0].split("&")[0]
    if not re.search(r"\s(-l|--selector)[\s=]", cmd):
        return
    words = shlex.split(cmd, comments=True)
    c.check("--tail=-1" in words, f"{where}: kubectl logs -l ... has --tail=-1", cmd)
    c.check("-n" in words or any(w.startswith("--namespace") for w in words), f"{where}: kubectl logs names its namespace", cmd)
    c.check("--prefix" in words, f"{where}: kubectl logs -l ... has --prefix", cmd)
    rest = line.split("|", 1)[1] if "|" in line else ""
    traces = TRACE_ID.findall(rest)
    if not traces:
        return
    trace = traces[0]
    logs = "\n".join(l.replace("TRACE", trace) for l in PREFIXED_LOGS) + "\n"
    res = subprocess.run(["sh", "-c", rest], input=logs, capture_output=True, text=True, timeout=30)
    got = [re.search(r'"msg": "([^"]*)"', l).group(1) for l in res.stdout.splitlines() if '"msg"' in l]
    c.check(got == ["order-date published", "file ready", "status updated"],
            f"{where}: the pipe after kubectl logs gives the trace's lines in time order", f"{got}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", default=os.environ.get("DX_SOURCE_DIR", os.getcwd()))
    ap.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    c = Checks()
    if shutil.which(a.kubectl) is None:
        c.check(False, f"{a.kubectl} found (scripts/test installs it)")
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    files = [os.path.join(src, "README.md"), os.path.join(src, "deploy", "README.md")]
    files += sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    logs_lines = 0
    with tempfile.TemporaryDirectory() as tmp:
        cfg = kubeconfig(tmp)
        for path in files:
            if not os.path.exists(path):
                continue
            where = os.path.relpath(path, src)
            with open(path, encoding="utf-8") as f:
                for tid in TRACE_ID.findall(f.read()):
                    if tid not in ("...",):
                        c.check(VALID_TRACE.match(tid) is not None and set(tid) != {"0"},
                                f"{where}: example trace id {tid!r} is one the workers accept")
            for line in shell_lines(path):
                for cmd in kubectl_parts(line):
                    check_kubectl(c, a.kubectl, cfg, where, cmd, src)
                if is_logs(line):
                    logs_lines += 1
                    check_logs_line(c, where, line)
    c.check(logs_lines > 0, "the documentation has kubectl logs lines to check")
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
