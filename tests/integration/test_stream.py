"""The ORDERS stream: bounded retention and ids of hand-made events (issue 11, §9).

1. STREAM_MAX_AGE and STREAM_MAX_BYTES are applied when a worker creates the
   stream and again when it starts on an existing one (an update); the
   defaults are 30 days and no size limit.
2. A bad STREAM_MAX_AGE or STREAM_MAX_BYTES is refused at start by every
   worker: exit code 2 and one line naming the variable.
3. An order-date published by hand without ids gets an event_id and a
   trace_id; they stay unique after the stream is deleted and created again
   (the stream sequence alone starts again at 1).
"""

import json
import os
import subprocess
import sys

import faultlib
import harness

DATE = "2026-11-24"
NS = 1_000_000_000


def figure(text):
    print(f"figure: {text}", flush=True)


def stream_config(p):
    c = p.client()
    try:
        return c.stream_info()["config"]
    finally:
        c.close()


def test_retention(p, t):
    proc = p.start_worker("file-transformer", STREAM_MAX_AGE="2d", STREAM_MAX_BYTES="64M")
    cfg = stream_config(p)
    t.check(cfg.get("max_age") == 2 * 86400 * NS,
            f"STREAM_MAX_AGE=2d gives the new stream max_age 2 days ({cfg.get('max_age')})")
    t.check(cfg.get("max_bytes") == 64 << 20,
            f"STREAM_MAX_BYTES=64M gives max_bytes 64 MiB ({cfg.get('max_bytes')})")
    harness.stop_process(proc)
    p.workers.pop("file-transformer")
    proc = p.start_worker("file-transformer")
    cfg = stream_config(p)
    t.check(cfg.get("max_age") == 30 * 86400 * NS,
            f"restarted with the defaults, the existing stream is updated to 30 days "
            f"({cfg.get('max_age')})")
    t.check(cfg.get("max_bytes") == -1, f"and to no size limit ({cfg.get('max_bytes')})")
    harness.stop_process(proc)
    p.workers.pop("file-transformer")


def test_bad_settings(p, t):
    cases = [("STREAM_MAX_AGE", "30x"), ("STREAM_MAX_AGE", "10m"), ("STREAM_MAX_BYTES", "lots"),
             ("STREAM_MAX_BYTES", "0")]
    for worker, args in (("file-transformer", []), ("status-checker", []),
                         ("daily-checker", ["--once", "--date", DATE])):
        for name, value in cases:
            try:
                res = subprocess.run(harness.worker_command(worker, args),
                                     env=p.env(worker, **{name: value}), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, timeout=10)
                code, text = res.returncode, res.stdout.decode("utf-8", "replace")
            except subprocess.TimeoutExpired as e:  # it started: killed by run()
                code, text = "still running after 10 s", (e.output or b"").decode("utf-8", "replace")
            lines = [l for l in text.splitlines() if l.strip()]
            t.check(code == 2 and len(lines) == 1 and name in lines[0],
                    f"{worker} with {name}={value}: exit 2 and one line naming it "
                    f"(exit {code}: {lines[:3]})")


def hand_event_ids(p, t, label):
    """Drops a file, publishes an order-date without ids, returns the
    (event_id, trace_id) the transformer gave it."""
    p.drop("US7", "input.csv", harness.SAMPLE_ORDERS)
    c = p.client()
    try:
        c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "US7"}))
    finally:
        c.close()
    proc = p.workers["file-transformer"]
    rec = harness.wait_until(lambda: next(iter(harness.log_records(proc, "file ready")), None),
                             timeout=60, what=f"{label}: the hand-made event handled")
    event_id, trace_id = rec.get("event_id", ""), rec.get("trace_id", "")
    t.check(event_id != "" and len(trace_id) == 32,
            f"{label}: the event got an event_id and a trace_id ({event_id!r}, {trace_id!r})")
    return event_id, trace_id


def test_ids_after_recreate(p, t):
    p.start_worker("file-transformer", log_name="file-transformer")
    first = hand_event_ids(p, t, "first stream")
    harness.stop_process(p.workers.pop("file-transformer"))
    c = p.client()
    try:
        reply = json.loads(c.request("$JS.API.STREAM.DELETE.ORDERS"))
    finally:
        c.close()
    t.check(reply.get("success") is True, f"the stream is deleted ({reply})")
    # A new log file, so that the next "file ready" is the second event's.
    p.start_worker("file-transformer", log_name="file-transformer-2")
    p.workers["file-transformer"] = p.workers.pop("file-transformer-2")
    second = hand_event_ids(p, t, "re-created stream")
    figure(f"ids before {first}, after re-creation {second}")
    t.check(first[0] != second[0], f"event_id unique after re-creation ({first[0]}, {second[0]})")
    t.check(first[1] != second[1], f"trace_id unique after re-creation ({first[1]}, {second[1]})")


def main():
    t = harness.TestRun("test_stream")
    with harness.pipeline_run(t, "stream") as p:
        p.start_nats()
        test_retention(p, t)
        test_bad_settings(p, t)
        test_ids_after_recreate(p, t)
    reports = faultlib.sanitizer_reports(p.workdir)
    t.check(reports == [], f"no sanitizer report in the worker logs ({reports[:3]})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
