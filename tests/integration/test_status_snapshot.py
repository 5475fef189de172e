"""status-checker keeps a snapshot and replays only what follows it (issue 11, §9).

1. status-checker consumes many FileReady events, is stopped (it saves its
   snapshot in the dx-status-snapshot bucket), more events arrive while it
   is down; at the next start it loads the snapshot and replays only those:
   its log says so, and GET /status lists every run, none twice.
2. A snapshot whose chunks are missing (a save cut short, a bucket edited by
   hand) is ignored with a warning and the whole stream is replayed: the
   status is the same.
3. Readiness comes after the rebuild, and within a generous bound.

The start-up time and memory with 100,000 runs are measured by
bench/status/run-status-bench, not here.
"""

import json
import re
import sys
import time

import faultlib
import harness

DATE = "2026-11-24"
FIRST = 2000
WHILE_DOWN = 150
BUCKET = "dx-status-snapshot"


def run_event(i):
    client = f"US{1 + i // 100}"
    return json.dumps({
        "event_id": f"snap-{i}", "trace_id": f"{i + 1:032x}", "client_id": client,
        "order_date": DATE, "source": f"{client}/d{i}.csv",
        "output": f"{client}/{DATE}/d{i}.csv", "rejects": f"{client}/{DATE}/d{i}.rejects.csv",
        "rows_in": 3, "rows_out": 3, "rows_rejected": 0, "rows_duplicate": 0,
        "bytes_out": 100, "sha256": f"{i:064x}"})


def rebuilt_line(proc):
    for r in harness.log_records(proc):
        m = re.match(r"status rebuilt from (the snapshot|the stream alone) and (\d+) events",
                     str(r.get("msg", "")))
        if m:
            return m.group(1), int(m.group(2))
    return None


def restart(p, label):
    harness.stop_process(p.workers.pop("status-checker"))
    started = time.monotonic()
    proc = p.start_worker("status-checker", log_name=f"status-checker-{label}")
    p.workers["status-checker"] = p.workers.pop(f"status-checker-{label}")
    return proc, time.monotonic() - started


def sources(p):
    return [r["source"] for r in p.status()["runs"]]


def check_all_runs(t, p, n, label):
    got = sources(p)
    want = {f"US{1 + i // 100}/d{i}.csv" for i in range(n)}
    t.check(len(got) == n and set(got) == want,
            f"{label}: GET /status lists each of the {n} runs once ({len(got)} listed, "
            f"{len(set(got))} distinct, {len(want - set(got))} missing)")


def main():
    t = harness.TestRun("test_status_snapshot")
    with harness.pipeline_run(t, "status-snapshot") as p:
        p.start_nats()
        p.start_worker("status-checker")
        c = p.client()
        try:
            c.publish_many("orders.file-ready", [run_event(i) for i in range(FIRST)])
            harness.wait_until(lambda: (lambda i: i.get("num_pending") == 0 and
                                        i.get("num_ack_pending") == 0)(
                c.consumer_info("status-checker")), timeout=120, what="status-checker caught up")
            check_all_runs(t, p, FIRST, "before the restart")

            # 1. Stopped: the snapshot is saved; events arrive while it is down.
            harness.stop_process(p.workers["status-checker"])
            head = c.kv_get(BUCKET, "head")
            t.check(head is not None and head.startswith(b"1 "),
                    f"a snapshot head is saved at shutdown ({head!r})")
            c.publish_many("orders.file-ready",
                           [run_event(i) for i in range(FIRST, FIRST + WHILE_DOWN)])
            # The order-date events in between are not status-checker's.
            c.publish_many("orders.order-date",
                           [json.dumps({"order_date": DATE, "client_id": "US1"})] * 10)
            proc, secs = restart(p, "warm")
            rebuilt = rebuilt_line(proc)
            t.check(rebuilt == ("the snapshot", WHILE_DOWN),
                    f"restarted, it loads the snapshot and replays only the {WHILE_DOWN} "
                    f"events that follow it ({rebuilt})")
            t.check(secs < 30, f"ready within 30 s ({secs:.1f} s)")
            print(f"figure: ready {secs:.2f} s after start with a snapshot of {FIRST} runs",
                  flush=True)
            check_all_runs(t, p, FIRST + WHILE_DOWN, "after the warm restart")

            # 2. A head whose chunks are gone: ignored, the whole stream replayed.
            harness.stop_process(p.workers["status-checker"])
            c.kv_put(BUCKET, "head", "1 99999 42 1 10 " + "0" * 64)
            proc, secs = restart(p, "corrupt")
            rebuilt = rebuilt_line(proc)
            t.check(rebuilt == ("the stream alone", FIRST + WHILE_DOWN),
                    f"a snapshot with missing chunks is ignored: the whole stream is replayed "
                    f"({rebuilt})")
            warned = [r for r in harness.log_records(proc)
                      if str(r.get("msg", "")).startswith("status snapshot ignored")]
            t.check(len(warned) == 1, f"with one warning ({[r.get('msg') for r in warned]})")
            check_all_runs(t, p, FIRST + WHILE_DOWN, "after the corrupt snapshot")
        finally:
            c.close()
    reports = faultlib.sanitizer_reports(p.workdir)
    t.check(reports == [], f"no sanitizer report in the worker logs ({reports[:3]})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
