"""A drop is taken only when complete (issue 8), on sftp:// and file://.

With a real OpenSSH sshd serving the inbox (tests/integration/sshd.py), then
the same on a local file:// inbox:
  - a writer appends a row to US1's drop every 0.3 s while daily-checker
    --once runs with DROP_MIN_AGE=2: the drop is logged drop_not_stable and
    gets no order-date, while US2's complete drop in the same run does;
  - the same for US5's drop rewritten in place every 0.3 s to the same size
    (only its modification time tells it is changing);
  - once the writers have stopped, the next run takes both, and the clean
    files in the depot have every row written, US5's in its last version;
  - names that uploaders use while a transfer is in progress (dot-files,
    *.part, *.filepart, *.tmp, *.part.csv, *.tmp.csv) are never taken, by
    daily-checker nor by file-transformer, even when stable.
The writer runs until the first run has returned, so the drop is changing
throughout that run whatever the machine's speed (no timed assertion).
"""

import os
import threading

import harness
from harness import SAMPLE_ORDERS
from sshd import run_on_inbox

DATE = "2026-11-24"
HEADER = SAMPLE_ORDERS.splitlines()[0] + "\n"
IN_PROGRESS = (".input.csv", "input.csv.part", "input.part.csv", "input.csv.filepart",
               "input.filepart", "input.csv.tmp", "input.tmp.csv", "~input.csv")


def row(i):
    return f"W-{i},{DATE},C{i},c{i}@example.com,SKU-{i},Mug,1,2.50,EUR,delivered\n"


class Writer(threading.Thread):
    """Appends one row every 0.3 s to path until stopped, as a slow upload."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.rows = 0
        self.stop = threading.Event()
        with open(path, "w") as f:
            f.write(HEADER)

    def run(self):
        while not self.stop.is_set():
            with open(self.path, "a") as f:
                f.write(row(self.rows + 1))
            self.rows += 1
            self.stop.wait(0.3)


class Rewriter(threading.Thread):
    """Rewrites path in place every 0.3 s with rows of the same length, as an
    uploader that overwrites a file: the size never changes, the mtime does."""

    ROWS = 3

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.version = 0
        self.stop = threading.Event()
        self._write()

    def ids(self):
        return [f"V{self.version % 10}-{i}" for i in range(1, self.ROWS + 1)]

    def _write(self):
        body = HEADER + "".join(
            f"{oid},{DATE},C{i},c{i}@example.com,SKU-{i},Mug,1,2.50,EUR,delivered\n"
            for i, oid in enumerate(self.ids(), 1))
        with open(self.path, "r+" if os.path.exists(self.path) else "w") as f:
            f.write(body)
        # Each version starts a new second, so that a listing, which
        # carries whole seconds, can tell two versions apart.
        os.utime(self.path, (1_700_000_000 + self.version, 1_700_000_000 + self.version))

    def run(self):
        while not self.stop.wait(0.3):
            self.version += 1
            self._write()


def published_clients(out):
    return sorted(r["client_id"] for r in harness.parse_log_records(out)
                  if r["msg"] == "order-date published")


def check_pipeline(t, p, inbox, scheme):
    """inbox: the local path of the folder the workers see as INBOX_URL."""
    os.makedirs(os.path.join(inbox, "US1"))
    os.makedirs(os.path.join(inbox, "US2"))
    os.makedirs(os.path.join(inbox, "US5"))
    with open(os.path.join(inbox, "US2", "input.csv"), "w") as f:
        f.write(SAMPLE_ORDERS)
    writer = Writer(os.path.join(inbox, "US1", "input.csv"))
    rewriter = Rewriter(os.path.join(inbox, "US5", "input.csv"))
    size = os.path.getsize(rewriter.path)
    writer.start()
    rewriter.start()
    try:
        harness.wait_until(lambda: writer.rows >= 2 and rewriter.version >= 1, timeout=10,
                           what="the writers writing")
        code, out = p.run_checker("--once", "--date", DATE, DROP_MIN_AGE=2)
    finally:
        writer.stop.set()
        rewriter.stop.set()
        writer.join()
        rewriter.join()
    t.check(os.path.getsize(rewriter.path) == size,
            f"[{scheme}] the rewritten drop kept its size ({os.path.getsize(rewriter.path)})")
    t.check(code == 0, f"[{scheme}] a run with a drop still changing exits 0 (got {code})")
    t.check(published_clients(out) == ["US2"],
            f"[{scheme}] only the complete drop is taken (got {published_clients(out)})")
    unstable = [r for r in harness.parse_log_records(out) if r.get("reason") == "drop_not_stable"]
    for client in ("US1", "US5"):
        t.check(any(r.get("client_id") == client and r.get("drop") == "input.csv"
                    for r in unstable),
                f"[{scheme}] {client}'s changing drop is logged drop_not_stable")
    t.check(all(r["level"] == "info" for r in unstable), f"[{scheme}] as info, not an error")
    p.wait_runs(["US2"], DATE)

    # The writer has stopped: the next run takes the drop, with every row.
    code, out = p.run_checker("--once", "--date", DATE, DROP_MIN_AGE=2)
    t.check(code == 0 and published_clients(out) == ["US1", "US5"],
            f"[{scheme}] the next run takes the finished drops (got {code}, "
            f"{published_clients(out)})")
    st = p.wait_runs(["US1", "US5"], DATE)
    run = st["clients"]["US1"]["dates"][DATE]
    t.check(run["rows_in"] == writer.rows and run["rows_out"] == writer.rows,
            f"[{scheme}] the output has every row written ({run['rows_in']} in, "
            f"{run['rows_out']} out, {writer.rows} written)")
    with open(os.path.join(p.depot, "US1", DATE, "input.csv")) as f:
        lines = f.read().splitlines()
    ids = sorted(line.split(",")[0] for line in lines[1:])
    t.check(ids == sorted(f"W-{i}" for i in range(1, writer.rows + 1)),
            f"[{scheme}] the clean file holds rows W-1..W-{writer.rows} "
            f"({len(lines) - 1} rows)")
    with open(os.path.join(p.depot, "US5", DATE, "input.csv")) as f:
        ids = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    t.check(ids == rewriter.ids(),
            f"[{scheme}] US5's clean file is the last version ({ids}, wanted {rewriter.ids()})")

    # In-progress names: never a drop, even when they stay unchanged.
    for client in ("US3", "US4"):
        os.makedirs(os.path.join(inbox, client))
        for name in IN_PROGRESS:
            with open(os.path.join(inbox, client, name), "w") as f:
                f.write(SAMPLE_ORDERS)
    with open(os.path.join(inbox, "US4", "orders.csv"), "w") as f:
        f.write(SAMPLE_ORDERS.replace("A-", "D-"))
    code, out = p.run_checker("--once", "--date", DATE, "--client", "US3", DROP_MIN_AGE=1)
    t.check(code == 0 and published_clients(out) == [] and "no pending drop for US3" in out,
            f"[{scheme}] a client with only in-progress names has no pending drop")
    code, out = p.run_checker("--once", "--date", DATE, "--client", "US4", DROP_MIN_AGE=1)
    t.check(code == 0 and published_clients(out) == ["US4"],
            f"[{scheme}] a client with a complete drop beside in-progress names gets its event")
    st = p.wait_runs(["US4"], DATE)
    t.check(st["clients"]["US4"]["dates"][DATE]["source"] == "US4/orders.csv",
            f"[{scheme}] file-transformer takes the complete drop")
    # Archived after its file-ready, which is what wait_runs() saw.
    archive = os.path.join(inbox, "US4", "archive", DATE)
    harness.eventually(lambda: os.path.isdir(archive))
    left = sorted(n for n in os.listdir(os.path.join(inbox, "US4")) if n != "archive")
    t.check(left == sorted(IN_PROGRESS),
            f"[{scheme}] every in-progress name stays in the inbox, untouched (left: {left})")
    archived = os.listdir(archive) if os.path.isdir(archive) else []
    t.check(archived == ["orders.csv"], f"[{scheme}] only the drop is archived ({archived})")
    t.check(not os.path.exists(os.path.join(p.depot, "US3")), f"[{scheme}] nothing for US3")


def run_variant(t, scheme):
    run_on_inbox(t, scheme, "stable", lambda p, inbox: check_pipeline(t, p, inbox, scheme))


def main():
    t = harness.TestRun("test_stable_drop")
    run_variant(t, "sftp")
    run_variant(t, "file")
    return t.finish()


if __name__ == "__main__":
    raise SystemExit(main())
