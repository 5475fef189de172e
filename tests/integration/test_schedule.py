"""daily-checker's scheduler after downtime, and with two replicas (issue 8).

No clock is faked: the scheduler runs with a daily SCHEDULE in Europe/Paris
whose time of day is at least nine hours away from now, and the test writes
the real state it keeps in the JetStream key-value bucket "daily-checker"
(key "last-run": the last completed scheduled run) as it would be after the
scheduler had been stopped across N scheduled times.  No file-transformer
runs, so the drops stay in the inbox and every run has something to publish;
what is published is read back from the stream.

  (a) catch-up: stopped across two scheduled times -> one OrderDate per
      client for each missed order date, oldest first, triggered_by
      "catch-up", then nothing more, also after a restart;
  (b) two schedulers on one NATS with the same missed runs -> each (client,
      date) published once, by exactly one of them (the claims, not only the
      stream's duplicate window);
  (c) CATCHUP_MAX_DAYS bounds the catch-up (2, then 0);
  (d) claims left by other replicas: one "claimed" by a replica that crashed
      before publishing is taken over; one "published" is never published
      again (long after the stream's duplicate window would have expired).
"""

import json
import shutil
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import harness
from harness import SAMPLE_ORDERS

TZ = "Europe/Paris"
BUCKET = "daily-checker"
CLIENTS = ("US1", "US2")


def schedule_now():
    """A daily schedule at least nine hours from now in TZ, so that no new
    scheduled time can fall during the test, and never in the 01:00-03:59
    hours that daylight saving changes skip or repeat.  Returns (spec, the
    ten newest past occurrences as (unix, local date), oldest first)."""
    tz = ZoneInfo(TZ)
    now = datetime.now(tz)
    hour = (now.hour + 12) % 24
    if hour in (1, 2, 3):
        hour = (now.hour + 9) % 24
    minute = 7
    occurrences = []
    for back in range(12, -1, -1):
        day = (now - timedelta(days=back)).date()
        at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if at.timestamp() <= now.timestamp():
            occurrences.append((int(at.timestamp()), day.isoformat()))
    return f"{minute} {hour} * * *", occurrences[-10:]


class Scenario:
    """A NATS server, two client drops and daily-checker schedulers."""

    def __init__(self, name, t, **env):
        self.t = t
        self.spec, self.occ = schedule_now()
        self.p = harness.Pipeline(name, extra_env=dict(
            TZ=TZ, SCHEDULE=self.spec, EVENT_ENCODING="json", SHUTDOWN_GRACE="3", **env))
        self.nc = None
        self.count = 0
        self.failed_before = t.failed

    def start(self):
        self.p.start_nats()
        for client in CLIENTS:
            self.p.drop(client, "input.csv", SAMPLE_ORDERS)
        self.nc = self.p.client()
        return self

    def stop(self):
        if self.nc is not None:
            self.nc.close()
        if self.t.failed > self.failed_before:
            self.p.dump_logs()
        self.p.stop()
        if self.t.failed == self.failed_before:  # kept for inspection on failure
            shutil.rmtree(self.p.workdir, ignore_errors=True)

    def start_checker(self, name="daily-checker", wait_ready=True, **env):
        self.count += 1
        port = harness.free_port()
        proc = self.p.start_worker("daily-checker", wait_ready=False,
                                   log_name=f"{name}-{self.count}", PORT=port, **env)
        proc.port = port
        if wait_ready:
            self.wait_ready(proc)
        return proc

    @staticmethod
    def wait_ready(proc):
        harness.wait_until(lambda: proc.poll() is None
                           and harness.http_get(proc.port, "/_/ready")[0] == 200,
                           timeout=30, what="daily-checker ready")

    def wait_idle(self, proc):
        """Until the scheduler has caught up and waits for its next time."""
        harness.wait_until(lambda: any(r["msg"].startswith("next scheduled run at")
                                       for r in harness.log_records(proc)),
                           timeout=60, what="the scheduler waiting for its next run")

    def stop_checker(self, proc):
        code = harness.stop_process(proc)
        self.t.check(code == 0, f"daily-checker stops cleanly on SIGTERM (exit {code})")

    def create_bucket(self):
        """First start: the scheduler creates its bucket and records "now"
        (nothing before its first start is owed), publishes nothing, stops."""
        proc = self.start_checker("first-start")
        self.wait_idle(proc)
        self.stop_checker(proc)
        return proc

    def seed_last_run(self, scheduled_at):
        self.nc.kv_put(BUCKET, "last-run", json.dumps({"scheduled_at": scheduled_at}))

    def last_run(self):
        raw = self.nc.kv_get(BUCKET, "last-run")
        return json.loads(raw)["scheduled_at"] if raw else None

    def claim(self, date, client, instant):
        raw = self.nc.kv_get(BUCKET, f"run.{date}.{client}.{instant}")
        return json.loads(raw) if raw else None

    def order_dates(self):
        return [json.loads(m) for m in self.nc.stream_messages("orders.order-date")]

    def wait_order_dates(self, n):
        return harness.wait_until(lambda: len(self.order_dates()) >= n and self.order_dates(),
                                  timeout=60, what=f"{n} order-date events")


def published_logs(proc):
    return [r for r in harness.log_records(proc) if r["msg"] == "order-date published"]


def test_catch_up(t):
    s = Scenario("schedule-catchup", t).start()
    try:
        first = s.create_bucket()
        recorded = s.last_run()
        t.check(recorded is not None and abs(recorded - time.time()) < 600,
                f"the first start records now as its last run (got {recorded})")
        t.check(s.order_dates() == [], "the first start publishes nothing (nothing is owed)")
        t.check(any("no scheduled run recorded yet" in r["msg"]
                    for r in harness.log_records(first)), "the first start says so")

        # As if the scheduler had been stopped since the third newest scheduled
        # time: the two newest were missed.
        missed = s.occ[-2:]
        s.seed_last_run(s.occ[-3][0])
        proc = s.start_checker()
        events = s.wait_order_dates(4)
        s.wait_idle(proc)
        time.sleep(2)  # anything more would show up now
        events = s.order_dates()
        t.check(len(events) == 4, f"one event per client per missed date (got {len(events)})")
        want_dates = [d for _, d in missed]
        got = [(e["order_date"], e["client_id"]) for e in events]
        t.check([d for d, _ in got] == [want_dates[0]] * 2 + [want_dates[1]] * 2,
                f"missed order dates {want_dates} run oldest first (got {got})")
        t.check(sorted(got) == sorted((d, c) for d in want_dates for c in CLIENTS),
                f"every client for every missed date (got {got})")
        t.check(all(e["triggered_by"] == "catch-up" for e in events),
                f"triggered_by catch-up (got {[e['triggered_by'] for e in events]})")
        t.check(s.last_run() == missed[-1][0],
                f"the record moved to the newest missed time ({s.last_run()} vs {missed[-1][0]})")
        for instant, date in missed:
            for client in CLIENTS:
                c = s.claim(date, client, instant)
                t.check(c is not None and c.get("state") == "published",
                        f"claim run.{date}.{client}.{instant} is published (got {c})")
        recs = harness.log_records(proc)
        t.check(any(r["msg"].startswith("catch-up: 2 missed order dates") for r in recs),
                "the catch-up is logged")
        s.stop_checker(proc)

        # A restart owes nothing more.
        proc = s.start_checker()
        s.wait_idle(proc)
        time.sleep(1)
        t.check(len(s.order_dates()) == 4, "nothing more after a restart")
        t.check(published_logs(proc) == [], "the restarted scheduler publishes nothing")
        s.stop_checker(proc)
    finally:
        s.stop()


def test_two_replicas(t):
    # DROP_MIN_AGE=2: each run lists, waits 2 s and lists again before
    # claiming, so two replicas started together run the same missed runs at
    # the same time.
    s = Scenario("schedule-replicas", t, DROP_MIN_AGE="2").start()
    try:
        s.create_bucket()
        missed = s.occ[-2:]
        s.seed_last_run(s.occ[-3][0])
        a = s.start_checker("replica-a", wait_ready=False)
        b = s.start_checker("replica-b", wait_ready=False)
        s.wait_ready(a)
        s.wait_ready(b)
        s.wait_order_dates(4)
        s.wait_idle(a)
        s.wait_idle(b)
        time.sleep(1)
        events = s.order_dates()
        keys = [(e["client_id"], e["order_date"]) for e in events]
        want = sorted((c, d) for _, d in missed for c in CLIENTS)
        t.check(sorted(keys) == want,
                f"each (client, date) exactly once in the stream (got {sorted(keys)})")
        pa, pb = published_logs(a), published_logs(b)
        # The stream's duplicate window would hide a second publish; the logs
        # show that the second replica did not even try.
        t.check(len(pa) + len(pb) == 4,
                f"4 publishes in all by the two replicas (got {len(pa)} + {len(pb)})")
        skipped = [r for p in (a, b) for r in harness.log_records(p)
                   if r["msg"] == "run already published by another replica: skipped"]
        t.check(len(skipped) >= 1, f"a replica skipped runs claimed by the other "
                                   f"(got {len(skipped)} skips)")
        t.check(s.last_run() == missed[-1][0], "both agree on the last run")
        s.stop_checker(a)
        s.stop_checker(b)
    finally:
        s.stop()


def test_catchup_max_days(t):
    s = Scenario("schedule-max", t).start()
    try:
        s.create_bucket()
        # Stopped across four scheduled times, two caught up.
        s.seed_last_run(s.occ[-5][0])
        proc = s.start_checker(CATCHUP_MAX_DAYS=2)
        s.wait_order_dates(4)
        s.wait_idle(proc)
        time.sleep(1)
        events = s.order_dates()
        want_dates = [d for _, d in s.occ[-2:]]
        got = [e["order_date"] for e in events]
        t.check(got == [want_dates[0]] * 2 + [want_dates[1]] * 2,
                f"CATCHUP_MAX_DAYS=2: only the two newest of four missed dates, oldest first "
                f"(want {want_dates}, got {got})")
        t.check(any(r["msg"].startswith("catch-up: 2 missed order dates since")
                    and "CATCHUP_MAX_DAYS" in r["msg"] for r in harness.log_records(proc)),
                "the skipped dates are logged")
        t.check(s.last_run() == s.occ[-1][0], "the record moved to the newest missed time")
        s.stop_checker(proc)

        # CATCHUP_MAX_DAYS=0: nothing is caught up, the record still moves on.
        s.seed_last_run(s.occ[-3][0])
        proc = s.start_checker(CATCHUP_MAX_DAYS=0)
        s.wait_idle(proc)
        time.sleep(1)
        t.check(len(s.order_dates()) == 4, "CATCHUP_MAX_DAYS=0 publishes nothing")
        t.check(s.last_run() == s.occ[-1][0], "and records the newest missed time")
        s.stop_checker(proc)
    finally:
        s.stop()


def test_claims_left_behind(t):
    s = Scenario("schedule-claims", t).start()
    try:
        s.create_bucket()
        instant, date = s.occ[-1]
        s.seed_last_run(s.occ[-2][0])
        # US1: claimed ten minutes ago by a replica that then crashed.
        s.nc.kv_put(BUCKET, f"run.{date}.US1.{instant}", json.dumps(
            {"state": "claimed", "owner": "dead-replica:1:0000",
             "at_ms": int(time.time() * 1000) - 600000}))
        # US2: published by another replica (long ago for the stream's window).
        s.nc.kv_put(BUCKET, f"run.{date}.US2.{instant}", json.dumps(
            {"state": "published", "owner": "other-replica:1:0000", "at_ms": 0}))
        proc = s.start_checker()
        s.wait_order_dates(1)
        s.wait_idle(proc)
        time.sleep(1)
        events = s.order_dates()
        got = [(e["client_id"], e["order_date"]) for e in events]
        t.check(got == [("US1", date)],
                f"the crashed replica's claim is taken over, the published one is not "
                f"published again (got {got})")
        c = s.claim(date, "US1", instant)
        t.check(c is not None and c["state"] == "published" and c["owner"] != "dead-replica:1:0000",
                f"the taken-over claim is now published by the taker (got {c})")
        recs = harness.log_records(proc)
        t.check(any(r["msg"].startswith("claim left unpublished past the lease")
                    and r.get("owner") == "dead-replica:1:0000" for r in recs),
                "the takeover is logged with the previous owner")
        t.check(s.last_run() == instant, "the run is recorded")
        code, body = harness.http_get(proc.port, "/metrics")
        t.check(code == 200 and b'dx_run_claims_total{outcome="taken_over"} 1' in body
                and b'dx_run_claims_total{outcome="published_elsewhere"} 1' in body
                and b'dx_scheduled_runs_total{triggered_by="catch-up"} 1' in body,
                "claims and runs are counted in /metrics")
        s.stop_checker(proc)
    finally:
        s.stop()


def main():
    t = harness.TestRun("test_schedule")
    for test in (test_catch_up, test_two_replicas, test_catchup_max_days,
                 test_claims_left_behind):
        try:
            test(t)
        except Exception as e:  # a crash of the test is a failure, with logs
            t.check(False, f"{test.__name__}: exception: {e!r}")
    return t.finish()


if __name__ == "__main__":
    raise SystemExit(main())
