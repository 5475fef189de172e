"""One trace id per run, across the three workers (issue 7).

A run's trace_id is born in daily-checker, or taken from a hand-made event
published on NATS, or from a W3C traceparent header (on an HTTP invocation of
file-transformer or daily-checker, or on a NATS message).  For each of these
sources, on its own client, the test checks that the trace id is in every
event of the run in the stream (OrderDate, FileReady, FileFailed) and in
every log line of the three workers that concerns the run, then runs the
one-liner of docs/operations.md on the three logs and checks that it gives back exactly
the run's lines, those of every worker involved, in time order.
"""

import json
import os
import re
import subprocess
import sys

import harness
from harness import SAMPLE_ORDERS

DATE = "2026-11-24"
LOGS = ("daily-checker.log", "file-transformer.log", "status-checker.log")
# The one-liner of docs/operations.md, on one machine, with the run's trace id for TRACE_ID.
ONE_LINER = ("grep -h -F '\"trace_id\": \"TRACE_ID\"' daily-checker.log file-transformer.log "
             "status-checker.log | LC_ALL=C sort")
BAD_DROP = "order_id,order_date\nZ-1,2026-11-24\n"


def pb_fields(data):
    """The fields of a protobuf message as {number: str or int} (strings and varints only)."""
    out, pos = {}, 0

    def varint():
        nonlocal pos
        shift = value = 0
        while True:
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value
    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out[number] = varint()
        elif wire == 2:
            n = varint()
            out[number] = data[pos:pos + n].decode("utf-8", "replace")
            pos += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


# Field numbers of proto/events.proto: trace_id is 2 and client_id 4 in all three.
ID_FIELDS = {"orders.order-date": {"event_id": 1, "trace_id": 2, "client_id": 4},
             "orders.file-ready": {"event_id": 1, "trace_id": 2, "caused_by": 3, "client_id": 4},
             "orders.file-failed": {"event_id": 1, "trace_id": 2, "caused_by": 3,
                                    "client_id": 4}}


def stream_events(p, subject):
    """Every event on subject in the stream, as dicts of their ids."""
    c = p.client()
    try:
        raw = c.stream_messages(subject)
    finally:
        c.close()
    events = []
    for data in raw:
        if data.lstrip().startswith(b"{"):
            events.append(json.loads(data))
        else:
            fields = pb_fields(data)
            events.append({k: fields.get(n, "") for k, n in ID_FIELDS[subject].items()})
    return events


def all_records(p):
    recs = []
    for name in LOGS:
        path = os.path.join(p.workdir, name)
        if os.path.exists(path):
            recs += harness.log_records(path)
    return recs


def wait_status_line(p, client):
    """Waits until status-checker has logged its update for client's run(s)."""
    harness.wait_until(
        lambda: any(r.get("client_id") == client and "files_in_depot" in r
                    for r in harness.log_records(p.workers["status-checker"])),
        what=f"status-checker's line for {client}")


def check_run(p, t, name, client, trace_id, workers, want_failed=False):
    """Checks the events and logs of the run of client, whose trace id is trace_id."""
    t.check(re.fullmatch(r"[0-9a-f]{32}", trace_id or "") is not None,
            f"{name}: the trace id is 32 lowercase hex ({trace_id!r})")
    # Events: every event of the client's run carries the trace id.
    order_dates = [e for e in stream_events(p, "orders.order-date") if e["client_id"] == client]
    ready = [e for e in stream_events(p, "orders.file-ready") if e["client_id"] == client]
    failed = [e for e in stream_events(p, "orders.file-failed") if e["client_id"] == client]
    t.check(len(ready) == 1, f"{name}: one file-ready for {client} ({len(ready)})")
    t.check(len(failed) == (1 if want_failed else 0),
            f"{name}: {1 if want_failed else 0} file-failed for {client} ({len(failed)})")
    for e in order_dates + ready + failed:
        # A hand-made event may leave its trace id out: file-transformer fills it in.
        t.check(e.get("trace_id") == trace_id or ("trace_id" not in e and e in order_dates),
                f"{name}: event {e.get('event_id')} carries the trace id ({e.get('trace_id')})")
    event_ids = {e.get("event_id") for e in order_dates + ready + failed} - {None, ""}
    # Logs: every line about this client or one of its events has the trace id.
    recs = all_records(p)
    # (status-checker's ClientState of another day of the client, e.g. the
    # day before turning missing, starts a trace of its own.)
    about = [r for r in recs if (r.get("client_id") == client and r.get("order_date") in (None, DATE))
             or r.get("event_id") in event_ids]
    wrong = [r for r in about if r.get("trace_id") != trace_id]
    t.check({r.get("worker") for r in about} == set(workers),
            f"{name}: {sorted(workers)} logged the run ({len(about)} lines)")
    t.check(not wrong, f"{name}: every log line of the run has its trace id ({wrong[:2]})")
    traced = [r for r in recs if r.get("trace_id") == trace_id]
    t.check({r["worker"] for r in traced} == set(workers),
            f"{name}: lines of {sorted(workers)} carry the trace id "
            f"({sorted({r['worker'] for r in traced})})")
    # The one-liner gives back exactly these lines, in time order.
    res = subprocess.run(["sh", "-c", ONE_LINER.replace("TRACE_ID", trace_id)], cwd=p.workdir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    lines = harness.parse_log_records(res.stdout.decode(), raw=True)
    t.check(res.returncode == 0 and sorted(map(json.dumps, lines)) ==
            sorted(map(json.dumps, traced)),
            f"{name}: the one-liner finds the run's {len(traced)} lines (got {len(lines)}, "
            f"exit {res.returncode} {res.stderr[:200]!r})")
    stamps = [r.get("ts", "") for r in lines]
    t.check(stamps == sorted(stamps), f"{name}: the one-liner's lines are in time order")
    order = [w for w in ("daily-checker", "file-transformer", "status-checker") if w in workers]
    # Causal milestones.  "order-date published" and "file ready" are logged once
    # JetStream has acknowledged the publish (and the drop is archived), so the
    # next worker may log before them; the lines below cannot be overtaken.
    milestones = {"daily-checker": "checking the inbox for pending drops",
                  "file-transformer": "processing order-date for " + client,
                  "status-checker": None}
    firsts = []
    for w in order:
        idx = [i for i, r in enumerate(lines) if r["worker"] == w and
               (milestones[w] is None and "files_in_depot" in r
                or milestones[w] is not None and r["msg"].startswith(milestones[w]))]
        firsts.append(idx[0] if idx else -1)
    t.check(-1 not in firsts and firsts == sorted(firsts),
            f"{name}: {' then '.join(order)} in the one-liner's output ({firsts})")


def main():
    t = harness.TestRun("test_tracing")
    with harness.pipeline_run(t, "tracing") as p:
        for client in ("US1", "US2", "US3", "US4", "US5", "US6"):
            p.drop(client, "input.csv", SAMPLE_ORDERS.replace("A-", client + "-"))
        p.drop("US2", "z-broken.csv", BAD_DROP)
        p.start()
        p.start_worker("daily-checker", SCHEDULE="")
        dc, ft = p.ports["daily-checker"], p.ports["file-transformer"]

        # 1. Born in daily-checker (a run over HTTP, as the cron-connector does).
        code, body = harness.http_post(dc, "/", json.dumps(
            {"order_date": DATE, "client_id": "US1"}).encode())
        t.check(code == 200, f"daily-checker run for US1 ({code}: {body[:200]!r})")
        trace1 = json.loads(body)["published"][0]["trace_id"] if code == 200 else None
        p.wait_runs(["US1"], DATE)
        wait_status_line(p, "US1")
        check_run(p, t, "daily-checker", "US1", trace1,
                  {"daily-checker", "file-transformer", "status-checker"})

        # 2. A hand-made JSON event on NATS naming its trace id (a good and a bad drop).
        trace2 = "0af7651916cd43dd8448eb211c80319c"
        c = p.client()
        try:
            c.publish("orders.order-date", json.dumps(
                {"order_date": DATE, "client_id": "US2", "trace_id": trace2}))
        finally:
            c.close()
        harness.wait_until(lambda: p.status()["failures"], what="US2's failure")
        p.wait_runs(["US2"], DATE)
        wait_status_line(p, "US2")
        check_run(p, t, "manual event", "US2", trace2, {"file-transformer", "status-checker"},
                  want_failed=True)

        # 3. A W3C traceparent on an HTTP invocation of file-transformer.
        trace3 = "4bf92f3577b34da6a3ce929d0e0e4736"
        code, body = harness.http_post(
            ft, "/", json.dumps({"order_date": DATE, "client_id": "US3"}).encode(),
            headers={"traceparent": f"00-{trace3}-00f067aa0ba902b7-01",
                     "Content-Type": "application/json"})
        t.check(code == 200 and json.loads(body).get("trace_id") == trace3,
                f"file-transformer answers with the traceparent's trace id ({code}: "
                f"{body[:200]!r})")
        p.wait_runs(["US3"], DATE)
        wait_status_line(p, "US3")
        check_run(p, t, "traceparent over HTTP", "US3", trace3,
                  {"file-transformer", "status-checker"})

        # 4. A traceparent header on a NATS message whose event has no trace id.
        trace4 = "5c1d2e3f4a5b6c7d8e9fa0b1c2d3e4f5"
        c = p.client()
        try:
            c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "US4"}),
                      headers={"traceparent": f"00-{trace4}-b7ad6b7169203331-01"})
        finally:
            c.close()
        p.wait_runs(["US4"], DATE)
        wait_status_line(p, "US4")
        check_run(p, t, "traceparent on NATS", "US4", trace4,
                  {"file-transformer", "status-checker"})

        # 5. A traceparent on an HTTP invocation of daily-checker.
        trace5 = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
        code, body = harness.http_post(
            dc, "/", json.dumps({"order_date": DATE, "client_id": "US5"}).encode(),
            headers={"traceparent": f"00-{trace5}-1111111111111111-01"})
        t.check(code == 200, f"daily-checker run for US5 ({code})")
        p.wait_runs(["US5"], DATE)
        wait_status_line(p, "US5")
        check_run(p, t, "traceparent to daily-checker", "US5", trace5,
                  {"daily-checker", "file-transformer", "status-checker"})

        # 6. A hand-made event without any trace id: file-transformer makes one.
        c = p.client()
        try:
            c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "US6"}))
        finally:
            c.close()
        p.wait_runs(["US6"], DATE)
        wait_status_line(p, "US6")
        trace6 = p.status()["clients"]["US6"]["dates"][DATE].get("trace_id")
        check_run(p, t, "event without trace id", "US6", trace6,
                  {"file-transformer", "status-checker"})
        t.check(len({trace1, trace2, trace3, trace4, trace5, trace6}) == 6,
                "six runs, six trace ids")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
