"""The state of every expected client's day with real servers (issue 14).

nats-server, status-checker, file-transformer and a file:// inbox; profiles
written with dxctl; DropCheck events published from the test where
daily-checker does not publish them yet.  The time zone is chosen so that
local time is near midday, far from the day's edges, whenever this runs:
- US51 expected an hour ago, nothing dropped: late, announced;
- US52 (no expected time): yesterday's day ended without a drop: missing;
- US53: a check saw its drop still changing: not_stable;
- US54: a drop without a unit_price column fails (failed), an alias and
  `dxctl replay` make it succeed: resolved, and the failures card's entry
  says resolved;
- US55: enabled: false: paused, never late;
then status-checker restarts, with its snapshot and then without (rebuilt from
the stream alone): the same states, and nothing announced twice;
- US56: the real daily-checker sees a drop not yet stable: not_stable.
"""

import datetime
import json
import sys
import threading
import time

import harness
from dxctl_run import dxctl, dxctl_json


def local_zone():
    """A POSIX TZ whose local time is about 12:00 now ("<+05>-5" is UTC+5)."""
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    shift = (12 - hour + 12) % 24 - 12  # -12..11
    return f"<{shift:+03d}>{-shift}", datetime.timedelta(hours=shift)


def days_by_client(p, date):
    return {d["client_id"]: d for d in p.status().get("days", []) if d["order_date"] == date}


def announcements(c):
    """Nats-Msg-Id of every ClientState in the stream."""
    ids = []
    for headers, _data in c.stream_entries("orders.client-state"):
        for line in headers.splitlines():
            if line.lower().startswith("nats-msg-id:"):
                ids.append(line.split(":", 1)[1].strip())
    return ids


def announced_lines(proc):
    return [r for r in harness.log_records(proc)
            if str(r.get("msg", "")).startswith("client state ")]


def drop_check(client, date, found, source=""):
    return json.dumps({"event_id": f"dc-{client}-{found}", "trace_id": f"{hash(client) & (2**127 - 1) | 1:032x}",
                       "client_id": client, "order_date": date, "found": found,
                       "source": source, "checked_at": "2026-12-01T10:00:00Z",
                       "triggered_by": "schedule"})


def main():
    t = harness.TestRun("test_day_states")
    tz, shift = local_zone()
    now_local = datetime.datetime.now(datetime.timezone.utc) + shift
    today = now_local.strftime("%Y-%m-%d")
    yesterday = (now_local - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    an_hour_ago = (now_local - datetime.timedelta(hours=1)).strftime("%H:%M")
    with harness.pipeline_run(t, "days", extra_env={"TZ": tz}) as p:
        p.start()
        c = p.client()
        for client, settings in (("US51", [f'expected_drop_time="{an_hour_ago}"']),
                                 ("US52", ["default_currency=EUR"]),
                                 ("US53", ["default_currency=EUR"]),
                                 ("US55", ["enabled=false", f'expected_drop_time="{an_hour_ago}"'])):
            code, _, err = dxctl(p, "client", "set", client, *settings)
            t.check(code == 0, f"dxctl client set {client} (exit {code}: {err.strip()})")
        c.publish("orders.drop-check", drop_check("US53", today, "not_stable", "US53/input.csv"))

        p.drop("US54", "input.csv", "order_id;date;quantity;Prix unitaire TTC\nA1;24/11/2026;2;12,50\n")
        code, _, err = dxctl_json(p, "trigger", "--client", "US54", "--date", today, "--wait=60")
        t.check(code == 1, f"the US54 drop fails (trigger exit {code}: {err.strip()})")
        harness.wait_until(lambda: days_by_client(p, today).get("US54", {}).get("state") == "failed",
                           timeout=60, what="US54 failed")

        want = {"US51": "late", "US53": "not_stable", "US55": "paused", "US54": "failed"}
        try:
            got = harness.wait_until(lambda: (lambda d: d if all(
                d.get(k, {}).get("state") == v for k, v in want.items()) else None)(
                    days_by_client(p, today)), timeout=60, what="today's states")
        except TimeoutError:
            print(json.dumps(p.status().get("days"), indent=1), file=sys.stderr)
            raise
        t.check(bool(got), f"today's states: {want}")
        late = got["US51"]
        t.check(late["reason"] == f"no drop by {an_hour_ago}" and late["expected_at"],
                f"US51 says why and when it was expected ({late})")
        t.check(got["US54"]["reason"] and "unit_price" in got["US54"]["reason"],
                f"US54's reason names the column ({got['US54']['reason']})")
        missing = days_by_client(p, yesterday).get("US52", {})
        t.check(missing.get("state") == "missing",
                f"US52's day of yesterday ended without a drop: missing ({missing})")
        st = p.status()
        t.check(st.get("timezone") == tz and st.get("today") == today and
                st.get("utc_offset") == f"{'+' if shift.total_seconds() >= 0 else '-'}"
                f"{abs(int(shift.total_seconds())) // 3600:02d}:00",
                f"/status names the zone, its offset and today ({st.get('timezone')}, "
                f"{st.get('utc_offset')}, {st.get('today')})")

        code, _, err = dxctl(p, "client", "set", "US54", "aliases.Prix unitaire TTC=unit_price")
        t.check(code == 0, f"alias set ({err.strip()})")
        code, _, err = dxctl_json(p, "replay", "--client", "US54", "--date", today, "--wait=60")
        t.check(code == 0, f"the replay succeeds (exit {code}: {err.strip()})")
        resolved = harness.wait_until(
            lambda: (lambda d: d if d.get("state") == "resolved" else None)(
                days_by_client(p, today).get("US54", {})), timeout=60, what="US54 resolved")
        t.check(resolved["rows_in"] == 1, f"the resolved day shows its rows ({resolved})")
        failures = [f for f in p.status()["failures"] if f["client_id"] == "US54"]
        t.check(failures and all(f.get("resolved") is True for f in failures),
                f"the failure is listed as resolved ({failures})")

        expected_ids = {f"client-state:US51:{today}:late:", f"client-state:US52:{yesterday}:missing:"}
        ids = harness.wait_until(lambda: (lambda i: i if expected_ids <= set(i) and
                                          sum(":US54:" in x for x in i) >= 2 else None)(
            announcements(c)), timeout=60, what="the ClientState announcements")
        fail_ids = [x for x in ids if ":US54:" in x]
        t.check(any(":failed:" in x for x in fail_ids) and any(":resolved:" in x for x in fail_ids),
                f"US54 announced failed then resolved ({fail_ids})")
        t.check(not any(x.startswith((f"client-state:US55:", f"client-state:US53:{today}:"))
                        for x in ids),
                f"paused and not-stable days are not announced ({ids})")
        metrics = harness.http_get(p.ports["status-checker"], "/metrics")[1].decode()
        t.check('dx_client_late{client_id="US51"} 1' in metrics and
                'dx_client_state{client_id="US55",state="paused"} 1' in metrics and
                'dx_client_state{client_id="US55",state="late"} 0' in metrics and
                'dx_client_open_failures{client_id="US54"} 0' in metrics,
                "dx_client_* gauges from the days")

        before = announcements(c)
        harness.stop_process(p.workers.pop("status-checker"))
        proc = p.start_worker("status-checker", log_name="status-checker-2")
        p.workers["status-checker"] = p.workers.pop("status-checker-2")
        time.sleep(3)  # a few ticks of the restarted process
        again = days_by_client(p, today)
        states = {k: again.get(k, {}).get("state") for k in want}
        want["US54"] = "resolved"
        t.check(states == want, f"after a restart, the same states ({states})")
        t.check(days_by_client(p, yesterday).get("US52", {}).get("state") == "missing",
                "after a restart, US52 still missing")
        t.check(announced_lines(proc) == [] and announcements(c) == before,
                f"after a restart nothing is announced again ({announced_lines(proc)})")
        # Without the snapshot, the announcements are read back from the stream.
        harness.stop_process(p.workers.pop("status-checker"))
        reply = json.loads(c.request("$JS.API.STREAM.DELETE.KV_dx-status-snapshot"))
        t.check(reply.get("success") is True, f"the snapshot bucket deleted ({reply})")
        proc = p.start_worker("status-checker", log_name="status-checker-3")
        p.workers["status-checker"] = p.workers.pop("status-checker-3")
        time.sleep(3)
        again = days_by_client(p, today)
        states = {k: again.get(k, {}).get("state") for k in want}
        t.check(states == want, f"rebuilt from the stream alone, the same states ({states})")
        t.check(announced_lines(proc) == [] and announcements(c) == before,
                f"rebuilt from the stream alone, nothing announced again ({announced_lines(proc)})")
        check_real_daily_checker(p, t, today)
        c.close()
    return t.finish()


def check_real_daily_checker(p, t, today):
    """End to end with the real daily-checker: a drop still being written is
    seen by a check, and the day turns not_stable."""
    path = p.drop("US56", "input.csv", harness.SAMPLE_ORDERS)
    stop = threading.Event()

    def write():  # the drop keeps growing while the check looks at it
        while not stop.wait(0.2):
            with open(path, "a") as f:
                f.write("A-9,2026-11-24,C9,z@example.com,SKU-9,Cup,1,2.00,EUR,pending\n")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        code, out = p.run_checker("--once", "--date", today, DROP_MIN_AGE=2, RECHECK_MAX=0)
    finally:
        stop.set()
        writer.join()
    t.check(code == 0, f"daily-checker --once exits 0 (got {code}: {out[-300:]})")
    day = harness.wait_until(lambda: (lambda d: d if d.get("state") == "not_stable" else None)(
        days_by_client(p, today).get("US56", {})), timeout=60, what="US56 not_stable")
    t.check(day["drop_seen_at"] is not None and "US56/input.csv" in (day["reason"] or ""),
            f"the check's drop is named and its time shown ({day})")


if __name__ == "__main__":
    sys.exit(main())
