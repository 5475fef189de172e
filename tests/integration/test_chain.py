"""The full chain on a real nats-server (JetStream) with file:// storage.

daily-checker --once -> file-transformer -> status-checker -> GET /status;
a manual trigger published by a plain NATS client; an undecodable message;
a client with no drop; a hostile client id.
"""

import json
import os
import re
import sys

import harness
from harness import SAMPLE_ORDERS

DATE = "2026-11-24"


def test_full_chain(p, t):
    p.drop("US1", "input.csv", SAMPLE_ORDERS)
    p.drop("US2", "input.csv", SAMPLE_ORDERS.replace("A-", "B-"))
    code, out = p.run_checker("--once", "--date", DATE)
    t.check(code == 0, f"daily-checker --once exits 0 (got {code}: {out[-300:]})")
    published = [r for r in harness.parse_log_records(out) if r["msg"] == "order-date published"]
    t.check(len(published) == 2, f"one order-date per client (got {len(published)})")
    t.check(all(f'"order_date": "{DATE}"' in l for l in out.splitlines()
                if '"order-date published"' in l), "the event is logged with \"order_date\": \"D\"")
    st = p.wait_runs(["US1", "US2"], DATE)
    for client in ("US1", "US2"):
        run = st["clients"][client]["dates"][DATE]
        t.check(run["rows_in"] == 3, f"{client} rows_in 3 (got {run['rows_in']})")
        t.check(run["rows_in"] == run["rows_out"] + run["rows_rejected"] + run["rows_duplicate"],
                f"{client} counts add up")
        out_path = os.path.join(p.depot, client, DATE, "input.csv")
        t.check(os.path.isfile(out_path), f"{out_path} exists")
        t.check(os.path.isfile(os.path.join(p.depot, client, DATE, "input.rejects.csv")),
                f"{client} rejects file exists")
        # Archived after its file-ready, which is what wait_runs() saw.
        archived = os.path.join(p.inbox, client, "archive", DATE, "input.csv")
        t.check(harness.eventually(lambda: os.path.isfile(archived)),
                f"{client} drop archived under archive/{DATE}/")
        t.check(not os.path.exists(os.path.join(p.inbox, client, "input.csv")),
                f"{client} drop left the inbox")
        t.check(st["clients"][client]["files_in_depot"] == 2, f"{client} has 2 files in depot")
        # The depot never shows a temporary file.
        t.check(not [n for n in os.listdir(os.path.join(p.depot, client, DATE))
                     if n.startswith(".")], f"{client} depot has no temporary file")
    # One trace id followed across the three workers.
    trace_id = published[0]["trace_id"]
    t.check(re.fullmatch(r"[0-9a-f]{32}", trace_id or "") is not None, "trace id is 32 hex")
    for worker in ("file-transformer", "status-checker"):
        recs = [r for r in harness.log_records(p.workers[worker]) if r.get("trace_id") == trace_id]
        t.check(len(recs) > 0, f"{worker} logged the trace id {trace_id}")
    ft = harness.log_records(p.workers["file-transformer"])
    t.check(any(r["msg"] == "file ready" and r.get("output") == f"US1/{DATE}/input.csv"
                for r in ft), "transformer logs a success line naming the generated file")
    sc = harness.log_records(p.workers["status-checker"])
    t.check(any("files_in_depot" in r for r in sc), "status-checker logs the depot file count")
    # Every log line has the required keys.
    for r in ft + sc:
        missing = {"ts", "level", "worker", "msg", "trace_id", "event_id"} - set(r)
        if missing:
            t.check(False, f"log line lacks {missing}: {r}")
            break


def test_manual_trigger(p, t):
    p.drop("US3", "orders-b.csv", SAMPLE_ORDERS.replace("A-", "C-"))
    c = p.client()
    try:
        c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "US3"}))
    finally:
        c.close()
    st = p.wait_runs(["US3"], DATE)
    t.check(st["clients"]["US3"]["dates"][DATE]["output"] == f"US3/{DATE}/orders-b.csv",
            "a hand-published JSON event is processed")


def test_undecodable(p, t):
    ft = p.workers["file-transformer"]
    c = p.client()
    try:
        c.publish("orders.order-date", b"\xff\x00\x13garbage")
        c.publish("orders.order-date", '{"order_date": 20261124}')
        c.publish("orders.order-date", '{"order_date": "2026-02-31", "client_id": "US1"}')
    finally:
        c.close()
    harness.wait_until(
        lambda: sum(1 for r in harness.log_records(ft)
                    if r["msg"] == "terminated undecodable message") >= 3,
        what="three terminated messages")
    recs = [r for r in harness.log_records(ft) if r["msg"] == "terminated undecodable message"]
    t.check(any("must be a string" in r["reason"] for r in recs), "wrong JSON type is named")
    t.check(any("not a YYYY-MM-DD date" in r["reason"] for r in recs), "impossible date is named")
    code, body = harness.http_get(p.ports["file-transformer"], "/metrics")
    t.check(code == 200 and re.search(
        rb'dx_events_terminated_total\{subject="orders.order-date"\} 3', body) is not None,
        "terminated messages are counted")
    t.check(ft.poll() is None, "the transformer keeps running")
    # ... and still processes the next good event.
    p.drop("US5", "input.csv", SAMPLE_ORDERS)
    code, _ = p.run_checker("--once", "--date", DATE, "--client", "US5")
    t.check(code == 0, "daily-checker for US5")
    p.wait_runs(["US5"], DATE)
    info = p.client().consumer_info("file-transformer")
    t.check(info.get("num_ack_pending", 1) == 0 and info.get("num_pending", 1) == 0,
            f"nothing left unacknowledged ({info.get('num_ack_pending')}, "
            f"{info.get('num_pending')})")


def test_no_drop_and_hostile_client(p, t):
    os.makedirs(os.path.join(p.inbox, "US4"), exist_ok=True)
    c = p.client()
    # daily-checker publishes only these two; the other workers' messages
    # (status-checker's ClientState announcements, a slow transformer's
    # last FileReady under valgrind) may land meanwhile and are not its.
    def checker_messages():
        return (len(c.stream_messages("orders.drop-check"))
                + len(c.stream_messages("orders.order-date")))
    before = checker_messages()
    orders = len(c.stream_messages("orders.order-date"))
    code, out = p.run_checker("--once", "--date", DATE, "--client", "US4")
    t.check(code == 0, "a client with no drop is not an error")
    t.check("no pending drop for US4" in out, "and it is logged")
    t.check(len(c.stream_messages("orders.order-date")) == orders, "no order-date for it")
    t.check(checker_messages() == before + 1,
            "only its drop-check (found none) is published")
    for hostile in ("../US1", "US1/../US2", "US1;rm -rf /", "US1\n"):
        code, out = p.run_checker("--once", "--date", DATE, "--client", hostile)
        t.check(code == 1 and "client id refused" in out,
                f"daily-checker refuses {hostile!r} (exit {code})")
    # The same through an event: refused, terminated, nothing written.
    c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "../US1"}))
    ft = p.workers["file-transformer"]
    harness.wait_until(lambda: any("CLIENT_PATTERN" in r["msg"]
                                   for r in harness.log_records(ft)), what="refusal logged")
    t.check(not os.path.exists(os.path.join(p.workdir, DATE)), "nothing written outside the depot")
    c.close()
    code, _ = p.run_checker("--once", "--date", "2026-13-01")
    t.check(code == 2, "an invalid --date is a usage error (exit 2)")


def main():
    t = harness.TestRun("test_chain")
    with harness.pipeline_run(t, "chain") as p:
        p.start()
        test_full_chain(p, t)
        test_manual_trigger(p, t)
        test_undecodable(p, t)
        test_no_drop_and_hostile_client(p, t)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
