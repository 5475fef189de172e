"""What daily-checker found, as DropCheck events, and re-checks (issue 14).

Real nats-server (JetStream), the real daily-checker, no file-transformer
(the drops stay in the inbox); what is published is read back from the
stream ORDERS, in stream order.

  (a) one check (--once, a drop still being written meanwhile), on a file://
      inbox and over a real sshd (sftp://): one DropCheck per expected
      client: US1 complete drop -> taken (after its OrderDate, with its id
      and trace id); US2 empty folder -> none; US3 being written ->
      not_stable with its source; US4 paused by its profile -> paused;
      US6 a profile and no folder -> none; US7 a paused profile and no
      folder -> paused; the Nats-Msg-Id names client, date and check;
  (b) the scheduler (two replicas) catches up today's run while US1's drop
      is being written: DropCheck not_stable, then, once the writer stops,
      a re-check takes it the same day without any new scheduled run: one
      OrderDate for US1 in the stream, published by one replica only, and
      a DropCheck taken that names it; then the re-checks stop;
  (c) function mode (POST / as the cron-connector does) publishes them too,
      and answers them under "checks".
"""

import base64
import json
import os
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import harness
from dxctl_run import dxctl
from harness import SAMPLE_ORDERS
from sshd import run_on_inbox
from test_stable_drop import Writer

DATE = "2026-11-24"


def stream(nc):
    """[(seq, subject, headers text, event)] of every message in ORDERS."""
    info = nc.stream_info()
    out = []
    for seq in range(info["state"]["first_seq"], info["state"]["last_seq"] + 1):
        reply = json.loads(nc.request("$JS.API.STREAM.MSG.GET.ORDERS",
                                      json.dumps({"seq": seq}).encode()))
        msg = reply.get("message")
        if not msg:
            continue
        headers = base64.b64decode(msg.get("hdrs", "") or "").decode("utf-8", "replace")
        out.append((seq, msg["subject"], headers,
                    json.loads(base64.b64decode(msg.get("data", "") or ""))))
    return out


def of(entries, subject, client=None):
    return [e for e in entries if e[1] == subject and (client is None or e[3]["client_id"] == client)]


def msg_id(headers):
    for line in headers.split("\r\n"):
        if line.lower().startswith("nats-msg-id:"):
            return line.split(":", 1)[1].strip()
    return None


def check_once(t, scheme, p, inbox):
    for client in ("US1", "US2", "US3", "US4"):
        os.makedirs(os.path.join(inbox, client))
    with open(os.path.join(inbox, "US1", "input.csv"), "w") as f:
        f.write(SAMPLE_ORDERS)
    with open(os.path.join(inbox, "US4", "input.csv"), "w") as f:
        f.write(SAMPLE_ORDERS)
    for client, enabled in (("US4", "false"), ("US6", "true"), ("US7", "false")):
        code, _, err = dxctl(p, "client", "set", client, f"enabled={enabled}")
        t.check(code == 0, f"[{scheme}] dxctl client set {client} enabled={enabled} ({err})")
    writer = Writer(os.path.join(inbox, "US3", "input.csv"))
    writer.start()
    try:
        harness.wait_until(lambda: writer.rows >= 2, timeout=10, what="the writer writing")
        code, out = p.run_checker("--once", "--date", DATE, DROP_MIN_AGE=2)
    finally:
        writer.stop.set()
        writer.join()
    t.check(code == 0, f"[{scheme}] the check exits 0 (got {code})")
    nc = p.client()
    try:
        entries = stream(nc)
    finally:
        nc.close()
    checks = of(entries, "orders.drop-check")
    by_client = {}
    for e in checks:
        by_client.setdefault(e[3]["client_id"], []).append(e)
    t.check(sorted(by_client) == ["US1", "US2", "US3", "US4", "US6", "US7"]
            and all(len(v) == 1 for v in by_client.values()),
            f"[{scheme}] one DropCheck per expected client, profile-only ones included "
            f"(got {[(c, len(v)) for c, v in sorted(by_client.items())]})")
    found = {c: (v[0][3]["found"], v[0][3].get("source", "")) for c, v in by_client.items()}
    want = {"US1": ("taken", "US1/input.csv"), "US2": ("none", ""),
            "US3": ("not_stable", "US3/input.csv"), "US4": ("paused", ""),
            "US6": ("none", ""), "US7": ("paused", "")}
    t.check(found == want, f"[{scheme}] found and source per client (got {found})")
    orders = of(entries, "orders.order-date")
    t.check([e[3]["client_id"] for e in orders] == ["US1"],
            f"[{scheme}] one OrderDate, for US1 ({[e[3]['client_id'] for e in orders]})")
    if orders and "US1" in by_client:
        od, dc = orders[0], by_client["US1"][0]
        t.check(dc[3]["order_date_event"] == od[3]["event_id"],
                f"[{scheme}] the taken DropCheck names its OrderDate ({dc[3]['order_date_event']} "
                f"vs {od[3]['event_id']})")
        t.check(dc[0] > od[0], f"[{scheme}] and comes after it in the stream ({dc[0]} > {od[0]})")
        t.check(dc[3]["trace_id"] == od[3]["trace_id"], f"[{scheme}] with its trace id")
    trace = {v[0][3]["trace_id"] for v in by_client.values()}
    t.check(len(trace) == 1, f"[{scheme}] one trace id for the whole check ({trace})")
    ids = sorted(msg_id(e[2]) or "" for e in checks)
    t.check(ids == sorted(f"drop-check:{c}:{DATE}:{next(iter(trace))}" for c in by_client),
            f"[{scheme}] Nats-Msg-Id drop-check:<client>:<date>:<check id> ({ids})")
    t.check(all(e[3]["order_date"] == DATE and e[3]["triggered_by"] == "manual"
                and e[3]["checked_at"].endswith("Z") for e in checks),
            f"[{scheme}] order date, trigger and time of the check")
    revs = {c: v[0][3].get("profile_revision", 0) for c, v in by_client.items()}
    t.check(revs["US1"] == 0 and all(revs[c] > 0 for c in ("US4", "US6", "US7")),
            f"[{scheme}] the profile revision seen ({revs})")


def test_once(t, scheme):
    run_on_inbox(t, scheme, "dropcheck", lambda p, inbox: check_once(t, scheme, p, inbox),
                 extra_env={"EVENT_ENCODING": "json"}, start=lambda p: p.start_nats())


def today_schedule():
    """A TZ where it is now between 04:00 and 21:59, and a daily schedule
    three minutes ago there: its run is owed today, its day lasts two hours
    more at least, and its next time is tomorrow.  (tz, spec, instant, date)"""
    for name in ("UTC", "Asia/Tokyo", "America/New_York", "Pacific/Honolulu", "Asia/Kolkata"):
        tz = ZoneInfo(name)
        at = datetime.now(tz).replace(second=0, microsecond=0) - timedelta(minutes=3)
        if 4 <= at.hour <= 21:
            return name, f"{at.minute} {at.hour} * * *", int(at.timestamp()), at.date().isoformat()
    raise RuntimeError("no time zone of the list is in its day")


def test_recheck(t):
    tz, spec, instant, today = today_schedule()
    p = harness.Pipeline("dropcheck-recheck", extra_env=dict(
        TZ=tz, SCHEDULE=spec, EVENT_ENCODING="json", SHUTDOWN_GRACE="3", DROP_MIN_AGE="1",
        RECHECK_SECONDS="2"))
    writer = None
    procs = []
    nc = None
    try:
        p.start_nats()
        nc = p.client()
        # First start: the bucket, and a record of "now" (nothing owed).
        first = p.start_worker("daily-checker", log_name="first-start")
        harness.wait_until(lambda: harness.log_records(first, None) and any(
            r["msg"].startswith("next scheduled run at") for r in harness.log_records(first)),
            timeout=60, what="the first scheduler idle")
        harness.stop_process(first)
        # As if stopped since an hour before today's run: it is owed.
        nc.kv_put("daily-checker", "last-run", json.dumps({"scheduled_at": instant - 3600}))
        p.drop("US2", "input.csv", SAMPLE_ORDERS)
        os.makedirs(os.path.join(p.inbox, "US1"))
        writer = Writer(os.path.join(p.inbox, "US1", "input.csv"))
        writer.start()
        harness.wait_until(lambda: writer.rows >= 2, timeout=10, what="the writer writing")
        for name in ("replica-a", "replica-b"):
            port = harness.free_port()
            procs.append(p.start_worker("daily-checker", wait_ready=False, log_name=name,
                                        PORT=port))
        harness.wait_until(lambda: any(e[3]["found"] == "not_stable" for e in of(
            stream(nc), "orders.drop-check", "US1")), timeout=60,
            what="US1's drop found not stable")
        writer.stop.set()
        writer.join()
        entries = harness.wait_until(
            lambda: (lambda es: of(es, "orders.drop-check", "US1")[-1][3]["found"] == "taken"
                     and es)(stream(nc)), timeout=90, what="US1's drop taken by a re-check")
        time.sleep(5)  # two more re-check delays: anything more would show now
        entries = stream(nc)
        us1 = of(entries, "orders.order-date", "US1")
        t.check(len(us1) == 1, f"one OrderDate for US1 in the stream (got {len(us1)})")
        published = [r for proc in procs for r in harness.log_records(proc)
                     if r["msg"] == "order-date published" and r.get("client_id") == "US1"]
        t.check(len(published) == 1,
                f"published by one replica only (got {len(published)} publishes)")
        if us1:
            od = us1[0][3]
            t.check(od["triggered_by"] == "recheck" and od["order_date"] == today,
                    f"by a re-check, for today's run date ({od['triggered_by']}, "
                    f"{od['order_date']} vs {today})")
            taken = [e for e in of(entries, "orders.drop-check", "US1")
                     if e[3]["found"] == "taken"]
            t.check(taken and all(e[3]["order_date_event"] == od["event_id"] for e in taken)
                    and taken[0][0] > us1[0][0],
                    "the taken DropCheck names it and follows it")
            t.check(taken and all(msg_id(e[2]).startswith(f"drop-check:US1:{today}:{instant}.r")
                                  for e in taken),
                    f"the re-check's Nats-Msg-Id names the run and the re-check "
                    f"({[msg_id(e[2]) for e in taken]})")
        t.check(all(e[3]["triggered_by"] in ("catch-up", "recheck")
                    for e in of(entries, "orders.order-date")),
                "no new scheduled run was needed")
        t.check([e[3]["client_id"] for e in of(entries, "orders.order-date", "US2")] == ["US2"],
                "US2's complete drop: one OrderDate")
        rows = [e for e in of(entries, "orders.drop-check", "US1")]
        t.check(rows[-1][3]["found"] == "taken",
                f"the re-checks stop once it is taken ({[e[3]['found'] for e in rows]})")
        for proc in procs:
            name = os.path.basename(proc.log_path)
            t.check(proc.poll() is None, f"{name} still running")
            code = harness.stop_process(proc)
            t.check(code == 0, f"{name} stops cleanly on SIGTERM (exit {code})")
    except Exception as e:  # a crash of the test is a failure, with logs
        t.check(False, f"recheck: exception: {e!r}")
    finally:
        if writer is not None:
            writer.stop.set()
        if nc is not None:
            nc.close()
        if t.failed:
            p.dump_logs()
        p.stop()


def test_function_mode(t):
    date = time.strftime("%Y-%m-%d", time.gmtime())
    with harness.pipeline_run(t, "dropcheck-fn", extra_env={
            "SUBSCRIBE": "0", "EVENT_ENCODING": "json"}) as p:
        p.drop("US1", "input.csv", SAMPLE_ORDERS)
        os.makedirs(os.path.join(p.inbox, "US2"))
        p.start_nats()
        p.start_worker("daily-checker")
        code, body = harness.http_post(p.ports["daily-checker"], "/", b"", headers={
            "X-Topic": "cron-function", "X-Connector": "cron-connector"})
        t.check(code == 200, f"cron invocation answered 200 (got {code}: {body[:200]!r})")
        answer = json.loads(body)
        got = sorted((c["client_id"], c["found"]) for c in answer.get("checks", []))
        t.check(got == [("US1", "taken"), ("US2", "none")],
                f"the answer lists the checks (got {got})")
        nc = p.client()
        try:
            checks = of(stream(nc), "orders.drop-check")
        finally:
            nc.close()
        got = sorted((e[3]["client_id"], e[3]["found"], e[3]["order_date"], e[3]["triggered_by"])
                     for e in checks)
        t.check(got == [("US1", "taken", date, "schedule"), ("US2", "none", date, "schedule")],
                f"function mode publishes them on orders.drop-check (got {got})")
        code, out, err = dxctl(p, "events", "--subject", "orders.drop-check")
        shown = sorted((d["event"]["client_id"], d["event"]["found"])
                       for d in map(json.loads, out.splitlines()) if "event" in d)
        t.check(code == 0 and shown == [("US1", "taken"), ("US2", "none")],
                f"dxctl events shows them decoded ({code}, {shown}, {err})")
        published = answer.get("published", [])
        t.check(len(published) == 1 and any(
            e[3]["order_date_event"] == published[0]["event_id"] for e in checks),
            "the taken one names the OrderDate answered")


def main():
    t = harness.TestRun("test_drop_check")
    for name, test in (("file", lambda: test_once(t, "file")),
                       ("sftp", lambda: test_once(t, "sftp")),
                       ("recheck", lambda: test_recheck(t)),
                       ("function", lambda: test_function_mode(t))):
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        try:
            test()
        except Exception as e:  # a crash of the test is a failure, with logs
            t.check(False, f"{name}: exception: {e!r}")
    return t.finish()


if __name__ == "__main__":
    raise SystemExit(main())
