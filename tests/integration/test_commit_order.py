"""What the depot's file commit and the transformer's change check promise,
seen in the system calls of the real file-transformer (under strace).

  - every file it publishes in the depot was fsync'd under its temporary name
    before the rename that makes it visible: after a crash the depot holds
    the old file or the complete new one, never a torn one;
  - the depot folder is fsync'd after every rename into it (one sync for a
    clean file and its rejects, after the second rename), so that the new
    names survive a crash;
  - a drop rewritten by its client while it is being cleaned is not archived:
    the clean output is the version that was read, and the new version stays
    in the inbox for the next run (README: "the new version stays in the
    inbox").

strace delays each fsync and rename of the transformer by DELAY_S: the test
rewrites the drop once the trace shows the transformer committing its first
depot file, which is after the whole drop was read (clean_drop reads to the
end before it commits), and before the drop is checked and archived.
"""

import os
import re
import shutil
import sys

import harness
from harness import SAMPLE_ORDERS

DATE = "2026-11-24"
DELAY_US = 1_000_000
SECOND_VERSION = SAMPLE_ORDERS.replace("A-", "N-") + SAMPLE_ORDERS.splitlines()[1].replace(
    "A-1", "N-4") + "\n"
SYSCALLS = "fsync,fdatasync,rename,renameat,renameat2"


def strace_wrapper(trace_path):
    if shutil.which("strace") is None:
        raise FileNotFoundError("strace is not installed (scripts/lib.sh installs it)")
    return ["strace", "-f", "-y", "-qq", "-e", "signal=none", "-e", f"trace={SYSCALLS}",
            "-e", f"inject=fsync,rename,renameat,renameat2:delay_enter={DELAY_US}",
            "-o", trace_path]


def read_trace(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)(?: resumed>)?(.*)$")


def commits(lines):
    """Walks the trace in order; returns (renames, fsynced) where renames is a
    list of (from, to, fsynced_before) for each completed rename, and
    fsynced the set of paths whose fsync completed.  A call cut in two by
    another thread ("<unfinished ...>", "<... resumed>") completes at its
    second half, on the same thread."""
    fsynced, renames, pending = set(), [], {}
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        pid, call, rest = m.groups()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (call, rest)
            continue
        if "resumed>" in line and pid in pending:
            call, head = pending.pop(pid)
            rest = head + rest
        if not re.search(r"= 0( \(DELAYED\))?$", rest):
            continue
        if call in ("fsync", "fdatasync"):
            m_path = re.search(r"^\(\d+<([^>]*)>", rest)
            if m_path:
                fsynced.add(m_path.group(1))
        elif call.startswith("rename"):
            paths = re.findall(r'"([^"]*)"', rest)
            if len(paths) >= 2:
                renames.append((paths[0], paths[1], paths[0] in fsynced))
    return renames, fsynced


def unsynced_renames(lines, depot):
    """The depot renames (final paths) that no fsync of their folder
    completed after: the folder sync that makes a new name survive a crash
    may serve several renames into one folder, but it must come after each
    of them."""
    pending = []
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        call, rest = m.group(2), m.group(3)
        if not re.search(r"= 0( \(DELAYED\))?$", rest):
            continue
        if call.startswith("rename"):
            paths = re.findall(r'"([^"]*)"', rest)
            if len(paths) >= 2 and is_depot_temp(paths[0], depot):
                pending.append(paths[1])
        elif call in ("fsync", "fdatasync"):
            m_path = re.search(r"^\(\d+<([^>]*)>", rest)
            if m_path:
                pending = [p for p in pending if os.path.dirname(p) != m_path.group(1)]
    return pending


def is_depot_temp(path, depot):
    return path.startswith(depot + "/") and ".tmp-" in os.path.basename(path)


def committing(trace_path, depot):
    """True once the transformer has entered its first depot commit."""
    for line in read_trace(trace_path):
        m = re.search(r"(?:fsync\(\d+<|rename\w*\((?:AT_FDCWD[^,]*, )?\")([^>\"]*)", line)
        if m and is_depot_temp(m.group(1), depot):
            return True
    return False


def main():
    t = harness.TestRun("test_commit_order")
    with harness.pipeline_run(t, "commit-order") as p:
        trace = os.path.join(p.workdir, "file-transformer.strace")
        depot = os.path.realpath(p.depot)
        p.start_nats()
        p.start_worker("status-checker")
        p.start_worker("file-transformer", wrapper=strace_wrapper(trace))
        drop = p.drop("US1", "input.csv", SAMPLE_ORDERS)
        code, out = p.run_checker("--once", "--date", DATE, "--client", "US1")
        t.check(code == 0, f"daily-checker --once exits 0 (got {code}: {out[-300:]})")

        # The drop was read to its end; the client uploads a new version.
        harness.wait_until(lambda: committing(trace, depot), timeout=60,
                           what="the transformer committing its depot files")
        with open(drop, "w") as f:
            f.write(SECOND_VERSION)
        st = p.wait_runs(["US1"], DATE)
        run = st["clients"]["US1"]["dates"][DATE]
        t.check(run["rows_in"] == 3, f"the run counts the version read: 3 rows (got {run})")
        out_path = os.path.join(p.depot, run["output"])
        with open(out_path) as f:
            ids = [line.split(",")[0] for line in f.read().splitlines()[1:]]
        t.check(ids == ["A-1", "A-2", "A-3"], f"the clean output is the version read ({ids})")
        # "file ready" is logged once the drop was checked and archived or left.
        harness.wait_until(
            lambda: any(r.get("msg") == "file ready"
                        for r in harness.log_records(p.workers["file-transformer"])),
            timeout=30, what="the transformer finishing the drop")
        t.check(any("changed while it was processed" in r.get("msg", "")
                    for r in harness.log_records(p.workers["file-transformer"])),
                "the transformer logs that the drop changed while it was processed")
        kept = open(drop).read() if os.path.exists(drop) else None
        t.check(kept == SECOND_VERSION, "the new version stays in the inbox, untouched")
        archive = os.path.join(p.inbox, "US1", "archive", DATE)
        archived = os.listdir(archive) if os.path.isdir(archive) else []
        t.check(archived == [], f"nothing is archived in its place ({archived})")

        harness.stop_process(p.workers.pop("file-transformer"))
        lines = read_trace(trace)
        renames, fsynced = commits(lines)
        published = [(a, b, ok) for a, b, ok in renames if is_depot_temp(a, depot)]
        t.check(len(published) >= 2,
                f"the clean file and its rejects were committed by rename ({len(published)} "
                f"renames of depot temporaries in {len(renames)} renames; trace:\n"
                + "\n".join(lines[-40:]) + ")")
        for tmp, final, ok in published:
            t.check(ok, f"{os.path.relpath(final, depot)} was fsync'd under {os.path.basename(tmp)}"
                        " before its rename")
        t.check(any(os.path.dirname(final) in fsynced for _, final, _ in published),
                "the depot folder is fsync'd too, so that the new name survives a crash")
        # The clean file and its rejects share one folder sync, which must
        # come after both renames (storage_writer_commit_pair).
        unsynced = unsynced_renames(lines, depot)
        t.check(not unsynced, "the depot folder is fsync'd after every rename into it "
                              f"(not after: {[os.path.relpath(f, depot) for f in unsynced]})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
