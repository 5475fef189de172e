"""test_chain again, with every worker process under valgrind (memcheck).

Any memory error or definite leak in a worker (daily-checker --once, and the
services, which exit through their SIGTERM path) is written to that process's
valgrind log; every log must be empty, and there must be one per worker run.
"""

import glob
import os
import sys
import tempfile

import harness

LOG_DIR = tempfile.mkdtemp(prefix="dx-valgrind-")
os.environ["DX_WORKER_WRAPPER"] = (
    "valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "
    f"--show-leak-kinds=definite --num-callers=30 --log-file={LOG_DIR}/vg.%p.log")

import test_chain  # noqa: E402 - after the wrapper is set


def main():
    if harness.built_with_asan(harness.binary("file-transformer")):
        print("skipped: valgrind cannot run AddressSanitizer builds (the normal build runs it)")
        return harness.TestRun.SKIP
    chain_rc = test_chain.main()
    t = harness.TestRun("test_valgrind")
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
