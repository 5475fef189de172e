"""Client profiles (issue 13) on a real nats-server (JetStream), through dxctl.

One pipeline; each scenario is its own client:
  US1  a file failing on an unknown header, fixed by an alias and replayed;
  US2  MDY dates;                       US3  comma decimals, '.' thousands;
  US4  order-date offset -1;            US5  paused;
  US6  a completion marker;             US7  an invalid profile refused;
  US8  an invalid document written straight into the bucket.
The transformer runs all along: every profile change is picked up without a
restart.
"""

import datetime
import json
import os
import sys
import time

import harness
from dxctl_run import dxctl, dxctl_json

DATE = "2026-11-24"
HEADER = "order_id;order_date;quantity;unit_price;currency\n"


def depot_rows(p, client, date, name="input.csv"):
    with open(os.path.join(p.depot, client, date, name), encoding="utf-8") as f:
        return f.read().splitlines()[1:]


def test_alias_and_replay(p, t):
    p.drop("US1", "input.csv", "order_id;date;quantity;Prix unitaire TTC\nA1;24/11/2026;2;12,50\n")
    code, doc, err = dxctl_json(p, "trigger", "--client", "US1", "--date", DATE, "--wait=60")
    t.check(code == 1, f"trigger --wait exits 1 on a failed file (got {code}: {err})")
    reason = (doc or {}).get("failures", [{}])[0].get("reason", "")
    t.check("missing required column: unit_price" in reason and '"Prix unitaire TTC"' in reason,
            f"the reason names the missing column and the header found ({reason})")
    failed = os.path.join(p.inbox, "US1", "failed", DATE, "input.csv")
    t.check(os.path.isfile(failed), "the unusable drop went to failed/")
    code, out, err = dxctl(p, "client", "set", "US1", "aliases.Prix unitaire TTC=unit_price")
    t.check(code == 0 and "revision 1" in out, f"client set an alias (got {code}: {out}{err})")
    code, doc, err = dxctl_json(p, "replay", "--client", "US1", "--date", DATE, "--wait=60")
    t.check(code == 0 and doc and doc["outcome"] == "succeeded",
            f"replay succeeds (got {code}: {doc} {err})")
    t.check(doc and doc["triggered_by"] == "replay", "the run is marked triggered_by replay")
    t.check(not os.path.exists(failed), "the failed drop was put back and processed")
    t.check(depot_rows(p, "US1", DATE) == ["A1,2026-11-24,,,,,2,12.50,,,,25.00"],
            f"the aliased column is cleaned ({depot_rows(p, 'US1', DATE)})")
    st = harness.wait_until(
        lambda: (lambda s: s if s["clients"].get("US1", {}).get("dates", {}).get(DATE) else None)(
            p.status()), what="US1 in /status")
    run = st["clients"]["US1"]["dates"][DATE]
    t.check(run.get("profile_revision") == 1, f"/status shows the profile revision ({run})")
    sup = run.get("supersedes", [])
    t.check(any(s["kind"] == "file-failed" and "unit_price" in s["reason"] for s in sup),
            f"/status shows the failure the replay superseded ({sup})")
    # A second replay of the archived drop is a run of its own, not swallowed
    # by the duplicate window, and supersedes the first run.
    code, doc, err = dxctl_json(p, "replay", "--client", "US1", "--date", DATE, "--wait=60")
    t.check(code == 0, f"replaying an archived drop succeeds (got {code}: {err})")
    st = p.status()
    runs = [r for r in st["runs"] if r["client_id"] == "US1"]
    t.check(len(runs) == 2, f"/status lists both runs ({len(runs)})")
    t.check(any(s["kind"] == "file-ready" for s in runs[0].get("supersedes", [])),
            "the newest run supersedes the first one")


def test_mdy(p, t):
    code, _, err = dxctl(p, "client", "set", "US2", "date_order=MDY", "default_currency=USD")
    t.check(code == 0, f"MDY profile saved ({err})")
    p.drop("US2", "input.csv", HEADER + "B1;03/04/2026;1;2.50;\nB2;12/31/2026 08:05;1;1;\n")
    code, _, err = dxctl(p, "trigger", "--client", "US2", "--date", DATE, "--wait=60")
    t.check(code == 0, f"MDY run succeeds ({err})")
    t.check(depot_rows(p, "US2", DATE) == ["B1,2026-03-04,,,,,1,2.50,USD,,,2.50",
                                           "B2,2026-12-31,,,,,1,1.00,USD,,08:05:00,1.00"],
            f"MDY dates and the default currency ({depot_rows(p, 'US2', DATE)})")


def test_comma_decimal(p, t):
    code, _, err = dxctl(p, "client", "set", "US3", 'decimal_separator=","',
                         'thousands_separator="."')
    t.check(code == 0, f"separators saved ({err})")
    p.drop("US3", "input.csv", HEADER + "C1;24/11/2026;1;1.234,50;EUR\nC2;24/11/2026;1;1.234;EUR\n")
    code, _, err = dxctl(p, "trigger", "--client", "US3", "--date", DATE, "--wait=60")
    t.check(code == 0, f"comma-decimal run succeeds ({err})")
    t.check(depot_rows(p, "US3", DATE) == ["C1,2026-11-24,,,,,1,1234.50,EUR,,,1234.50",
                                           "C2,2026-11-24,,,,,1,1234.00,EUR,,,1234.00"],
            f"1.234,50 and 1.234 under ',' decimals ({depot_rows(p, 'US3', DATE)})")


def test_offset(p, t):
    code, _, err = dxctl(p, "client", "set", "US4", "order_date_offset_days=-1")
    t.check(code == 0, f"offset saved ({err})")
    p.drop("US4", "input.csv", HEADER + "D1;24/11/2026;1;1;EUR\n")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    yesterday = (today - datetime.timedelta(days=1)).isoformat()
    code, out = p.run_checker("--once", "--client", "US4")
    t.check(code == 0, f"daily-checker --once exits 0 ({out[-300:]})")
    st = p.wait_runs(["US4"], yesterday)
    t.check(st["clients"]["US4"]["dates"][yesterday]["output"] == f"US4/{yesterday}/input.csv",
            "an offset -1 client's output lands under yesterday's date")
    t.check(os.path.isfile(os.path.join(p.inbox, "US4", "archive", yesterday, "input.csv")),
            "and is archived under yesterday's date")


def test_paused(p, t):
    code, _, err = dxctl(p, "client", "set", "US5", "enabled=false")
    t.check(code == 0, f"paused profile saved ({err})")
    p.drop("US5", "input.csv", HEADER + "E1;24/11/2026;1;1;EUR\n")
    code, out = p.run_checker("--once", "--date", DATE, "--client", "US5")
    t.check(code == 0, f"daily-checker exits 0 ({out[-300:]})")
    t.check('"order-date published"' not in out, "no order-date for a paused client")
    t.check("client_paused" in out, "the paused client is logged as such")
    t.check(os.path.isfile(os.path.join(p.inbox, "US5", "input.csv")), "its drop stays")
    code, out, _ = dxctl(p, "client", "list")
    line = [l for l in out.splitlines() if l.startswith("US5")]
    t.check(line and "paused" in line[0], f"client list shows it paused ({line})")
    us5 = p.status()["clients"].get("US5", {})
    t.check(us5.get("paused") is True and us5.get("profile_revision", 0) > 0,
            f"/status shows the client paused, with its profile revision ({us5})")


def test_marker(p, t):
    code, _, err = dxctl(p, "client", "set", "US6", 'done_marker=".ok"')
    t.check(code == 0, f"marker profile saved ({err})")
    p.drop("US6", "input.csv", HEADER + "F1;24/11/2026;1;1;EUR\n")
    started = time.time()
    code, out = p.run_checker("--once", "--date", DATE, "--client", "US6", DROP_MIN_AGE="30")
    t.check(code == 0 and '"order-date published"' not in out,
            f"without its marker the drop is not taken ({out[-300:]})")
    t.check("drop_not_marked" in out, "the missing marker is logged")
    p.drop("US6", "input.csv.ok", "")
    code, out = p.run_checker("--once", "--date", DATE, "--client", "US6", DROP_MIN_AGE="30")
    elapsed = time.time() - started
    t.check(code == 0 and '"order-date published"' in out, "with its marker it is taken")
    # Generous bound: two runs that each would wait 30 s for stability.
    t.check(elapsed < 30, f"a marked drop does not wait DROP_MIN_AGE ({elapsed:.1f}s for two runs)")
    p.wait_runs(["US6"], DATE)
    archive = os.path.join(p.inbox, "US6", "archive", DATE)
    t.check(sorted(os.listdir(archive)) == ["input.csv", "input.csv.ok"],
            f"the marker is archived with its drop ({sorted(os.listdir(archive))})")


def test_refused_on_write(p, t):
    for args, want in ((["date_order=DDMM"], "date_order must be"),
                       (["aliases.Prix=price"], "not a column"),
                       (["colour=blue"], "unknown key \"colour\"")):
        code, out, err = dxctl(p, "client", "set", "US7", *args)
        t.check(code == 1 and want in err, f"{args} refused with the reason (got {code}: {err})")
    code, _, err = dxctl(p, "client", "get", "US7")
    t.check(code == 1, f"nothing was written for US7 ({err})")


def test_invalid_in_bucket(p, t):
    c = p.client()
    try:
        rev = c.kv_put("clients", "US8", '{"date_order": "sideways"}')
    finally:
        c.close()
    p.drop("US8", "input.csv", HEADER + "H1;24/11/2026;1;1;EUR\n")
    code, doc, _ = dxctl_json(p, "trigger", "--client", "US8", "--date", DATE, "--wait=8")
    t.check(code != 0, f"a run with an invalid profile does not succeed (got {code})")

    def failure():
        return [f for f in p.status()["failures"] if f["client_id"] == "US8"]
    fails = harness.wait_until(failure, timeout=30, what="US8 failure on /status")
    reason = fails[0]["reason"]
    t.check(f"client profile US8 (revision {rev}) is invalid" in reason and "date_order" in reason,
            f"/status names the problem ({reason})")
    t.check(fails[0]["permanent"] is False, "as a transient failure")
    us8 = p.status()["clients"].get("US8", {})
    t.check("date_order" in us8.get("profile_error", ""),
            f"/status shows the client's profile error ({us8})")
    t.check(os.path.isfile(os.path.join(p.inbox, "US8", "input.csv")), "the drop is held")
    t.check(not os.path.exists(os.path.join(p.depot, "US8")), "nothing half-applied in the depot")
    # Fixed, the held drop goes through at the next redelivery.
    code, _, err = dxctl(p, "client", "set", "US8", "date_order=DMY")
    t.check(code == 0, f"the profile is fixed ({err})")
    st = p.wait_runs(["US8"], DATE, timeout=90)
    t.check(st["clients"]["US8"]["dates"][DATE]["rows_out"] == 1,
            "the held drop is processed once the profile is fixed")


def main():
    t = harness.TestRun("test_profiles")
    with harness.pipeline_run(t, "profiles") as p:
        p.start()
        for test in (test_alias_and_replay, test_mdy, test_comma_decimal, test_offset,
                     test_paused, test_marker, test_refused_on_write, test_invalid_in_bucket):
            try:
                test(p, t)
            except Exception as e:  # noqa: BLE001 - one scenario's crash fails it, not the rest
                t.check(False, f"{test.__name__}: exception {e!r}")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
