"""test_chain again, with every worker process under valgrind (memcheck).

Any memory error or definite leak in a worker (daily-checker --once, and the
services, which exit through their SIGTERM path) is written to that process's
valgrind log; every log must be empty, and there must be one per worker run.
`file-transformer` execs file-transformer-service, so valgrind follows
children (--trace-children=yes); a first run, with a log that is not quiet,
checks that the service itself ran under valgrind.
"""

import glob
import os
import subprocess
import sys
import tempfile

import harness

LOG_DIR = tempfile.mkdtemp(prefix="dx-valgrind-")
VALGRIND = ("valgrind --trace-children=yes --error-exitcode=99 --leak-check=full "
            "--errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30")
os.environ["DX_WORKER_WRAPPER"] = f"{VALGRIND} -q --log-file={LOG_DIR}/vg.%p.log"

import test_chain  # noqa: E402 - after the wrapper is set


def main():
    if harness.built_with_asan(harness.binary("file-transformer")):
        print("skipped: valgrind cannot run AddressSanitizer builds (the normal build runs it)")
        return harness.TestRun.SKIP
    t = harness.TestRun("test_valgrind")
    # The exec is followed: the last image valgrind names in the log of a
    # service start (refused at once for its bad PORT) is the service's.
    probe = os.path.join(tempfile.mkdtemp(prefix="dx-valgrind-probe-"), "probe.log")
    res = subprocess.run(VALGRIND.split() + [f"--log-file={probe}",
                                             harness.binary("file-transformer")],
                         env={"PATH": os.environ["PATH"], "PORT": "not-a-port"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    with open(probe, errors="replace") as f:
        commands = [line for line in f if "Command:" in line]
    t.check(res.returncode == 2 and any("file-transformer-service" in c for c in commands),
            f"valgrind follows file-transformer into file-transformer-service "
            f"(exit {res.returncode}, {commands})")
    chain_rc = test_chain.main()
    t.check(chain_rc == 0, "test_chain passes with the workers under valgrind")
    logs = sorted(glob.glob(os.path.join(LOG_DIR, "vg.*.log")))
    # status-checker, file-transformer, and daily-checker run several times.
    t.check(len(logs) >= 5, f"every worker ran under valgrind ({len(logs)} logs)")
    for path in logs:
        with open(path, errors="replace") as f:
            report = f.read()
        t.check(report.strip() == "", f"valgrind report in {path}:\n{report[:4000]}")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
