"""Each worker's command line: --version, --help, bad flags.

  - `<worker> --version` prints "<worker> <version>" (meson's project
    version) and exits 0;
  - `<worker> --help` exits 0 and lists, with its default, every environment
    variable config_load() reads (config_print_help runs it in describe
    mode);
    every variable it lists is in a configuration table of the docs, and
    every variable of those tables is either listed or read elsewhere (the
    SFTP backend's SFTP_*, dxctl's STATUS_URL), so the docs and the code
    cannot drift apart unnoticed;
  - an unknown flag prints one line naming it and exits 2;
  - `file-transformer` links none of the service's libraries (nats.c,
    libssh, libmicrohttpd, OpenSSL, protobuf-c), so that a one-shot clean
    starts in a few milliseconds, and runs the service by exec'ing
    `file-transformer-service` from its own folder: a bad setting still
    gets the service's one line and exit 2 through it, and without the
    service beside it the command says so in one line and exits 1.
No server is started: nothing here touches the network.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness

WORKERS = ("daily-checker", "file-transformer", "status-checker")
# Not read by config_load(): the SFTP backend reads SFTP_* (storage_sftp*.c)
# dxctl, which is not a worker, reads STATUS_URL, and the duplicate set reads
# TMPDIR when it spills, as every program does.
READ_ELSEWHERE = re.compile(r"^(SFTP_.*|STATUS_URL|TMPDIR)$")


def project_version():
    with open(os.path.join(harness.SOURCE_DIR, "meson.build")) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)


def documented_variables():
    """{variable: default column} of every '| variable | default | meaning |'
    table in README.md and docs/*.md."""
    names = {}
    paths = [os.path.join(harness.SOURCE_DIR, "README.md")] + sorted(
        glob.glob(os.path.join(harness.SOURCE_DIR, "docs", "*.md")))
    for path in paths:
        in_table = False
        with open(path) as f:
            for line in f:
                if re.match(r"^\|\s*variable\s*\|", line):
                    in_table = True
                elif not line.startswith("|"):
                    in_table = False
                elif in_table:
                    # A row may name several variables: "| `A`, `B` | ... |".
                    m = re.match(r"^\|([^|]*)\|([^|]*)\|", line)
                    for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", m.group(1) if m else ""):
                        names[name] = m.group(2).strip()
    return names


def default_agrees(helped, doc):
    """The docs write a default as `value`, or in words when there is none
    ("(none)", "(required by ...)"), or as a plain word ("UTC")."""
    if doc.startswith("`"):
        return doc == f"`{helped}`"
    return helped in ("(none)", doc)


def run(name, *args):
    res = subprocess.run([harness.binary(name)] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30, env={"PATH": os.environ["PATH"]})
    return res.returncode, res.stdout.decode(), res.stderr.decode()


# The libraries only the service needs; `file-transformer clean` must not
# load them (their relocations are most of the service's start-up).
SERVICE_LIBRARIES = re.compile(r"^lib(nats|ssh|microhttpd|gnutls|crypto|ssl|protobuf-c)\.so")


def needed_libraries(path):
    out = subprocess.run(["readelf", "-d", path], stdout=subprocess.PIPE, check=True,
                         timeout=30).stdout.decode()
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def check_clean_command(t, version):
    front = harness.binary("file-transformer")
    service = os.path.join(os.path.dirname(front), "file-transformer-service")
    needed = needed_libraries(front)
    heavy = [lib for lib in needed if SERVICE_LIBRARIES.match(lib)]
    t.check(any(lib.startswith("libcsv.so") for lib in needed) and not heavy,
            f"file-transformer links libcsv and none of the service's libraries "
            f"(NEEDED: {needed})")
    t.check(any(SERVICE_LIBRARIES.match(lib) for lib in needed_libraries(service)),
            "file-transformer-service links the service's libraries (the check above reads "
            "the right thing)")
    res = subprocess.run([service, "--version"], stdout=subprocess.PIPE, timeout=30)
    t.check(res.returncode == 0 and res.stdout.decode() == f"file-transformer-service {version}\n",
            f"file-transformer-service --version (got {res.returncode}, {res.stdout!r})")
    res = subprocess.run([front], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                         env={"PATH": os.environ["PATH"], "PORT": "not-a-port"})
    err = res.stderr.decode()
    t.check(res.returncode == 2 and "PORT" in err and len(err.splitlines()) == 1,
            f"a bad setting reaches the service through the exec: one line, exit 2 "
            f"(got {res.returncode}, {err!r})")
    with tempfile.TemporaryDirectory(prefix="dx-cli-") as alone:
        copy = os.path.join(alone, "file-transformer")
        shutil.copy2(front, copy)
        res = subprocess.run([copy], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                             env={"PATH": os.environ["PATH"]})
        err = res.stderr.decode()
        t.check(res.returncode == 1 and "file-transformer-service" in err and
                len(err.splitlines()) == 1,
                f"without file-transformer-service beside it: one line, exit 1 "
                f"(got {res.returncode}, {err!r})")


def main():
    t = harness.TestRun("test_cli")
    version = project_version()
    documented = documented_variables()
    t.check(len(documented) >= 10, f"the docs have a configuration table ({sorted(documented)})")
    for name in WORKERS:
        code, out, err = run(name, "--version")
        t.check(code == 0 and out == f"{name} {version}\n",
                f"{name} --version prints '{name} {version}' and exits 0 (got {code}, {out!r})")
        code, out, err = run(name, "--help")
        t.check(code == 0 and out.startswith("usage: ") and err == "",
                f"{name} --help prints its usage and exits 0 (got {code}, {err[:200]!r})")
        env = out[out.find("\nEnvironment"):]
        defaults = dict(re.findall(r"^  ([A-Z][A-Z0-9_]*) +(\S.*)$", env, re.M))
        listed = sorted(defaults)
        t.check(len(listed) >= 10, f"{name} --help lists the environment ({listed})")
        undocumented = sorted(set(listed) - set(documented))
        t.check(not undocumented, f"{name} --help: every variable is documented "
                                  f"(not in the docs: {undocumented})")
        unlisted = sorted(v for v in set(documented) - set(listed)
                          if not READ_ELSEWHERE.match(v))
        t.check(not unlisted, f"{name} --help lists every documented variable "
                              f"(missing: {unlisted})")
        wrong = {v: (d, documented.get(v)) for v, d in defaults.items()
                 if v in documented and not default_agrees(d, documented[v])}
        t.check(not wrong, f"{name} --help and the docs give the same defaults "
                           f"(help, docs: {wrong})")
        code, out, err = run(name, "--no-such-flag")
        t.check(code == 2 and "--no-such-flag" in err and len(err.splitlines()) == 1,
                f"{name} refuses an unknown flag with one line and exit 2 (got {code}, {err!r})")
    check_clean_command(t, version)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
