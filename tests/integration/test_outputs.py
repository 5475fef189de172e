"""Depot outputs that never replace one another, and drops with unusable
names (issue 11, items 1 and 4), on the real chain: nats-server with
JetStream, the workers, and a real sshd for the sftp:// run.

1. Output paths (file:// and sftp://): a second, different drop of the same
   name the same day gets its own outputs (<stem>.1.csv, named like its
   archive copy), and so does a third one with the first one's bytes; a drop
   named x.rejects.csv never takes the name of x.csv's rejects file, in
   either order; FileReady, /status and the page name the real paths; every
   output is byte-identical to `file-transformer clean` of its own source.
2. Unusable names (a newline, invalid UTF-8, a backslash, 230 bytes): each
   fails once, permanently, with a FileFailed that status-checker decodes
   (the name escaped), shown on /status and the page; the file moves to
   failed/<date>/ under a safe name, and a second event finds nothing to fail.
"""

import os
import signal
import subprocess
import sys

import faultlib
import harness
from harness import SAMPLE_ORDERS

DATE = "2026-11-24"
BAD_ROW = "A-9,2026-11-24,C9,dan@example.com,SKU-9,Cup,-1,2.00,EUR,pending\n"


def publish_order_date(p, client_id, date=DATE):
    c = p.client()
    try:
        c.publish("orders.order-date",
                  f'{{"order_date": "{date}", "client_id": "{client_id}"}}')
    finally:
        c.close()


def wait_run_count(p, client, count, what):
    return harness.wait_until(
        lambda: len(faultlib.runs_of(p.status(), client, DATE)) >= count and p.status(),
        timeout=60, interval=0.2, what=what)


def drop_and_run(p, client, name, content, runs):
    """Drops name, publishes an OrderDate, waits for the client's runs-th
    run of the day; returns the status."""
    p.drop(client, name, content)
    publish_order_date(p, client)
    return wait_run_count(p, client, runs, f"{client}: {name} (run {runs})")


def metric(port, series):
    """The value of one series (name and labels, as exposed) on GET /metrics."""
    _code, body = harness.http_get(port, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def bodies(p, client, stem="input"):
    """The rows (header left out) of a drop's clean and rejects files."""
    folder = os.path.join(p.depot, client, DATE)
    return tuple(read(os.path.join(folder, name)).decode().split("\n", 1)[1]
                 for name in (f"{stem}.csv", f"{stem}.rejects.csv"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_outputs_of(p, t, client, stem, content, label):
    """The depot's <stem>.csv and <stem>.rejects.csv are exactly what
    `file-transformer clean` makes of content."""
    src = os.path.join(p.workdir, f"src-{client}-{stem}.csv")
    with open(src, "w") as f:
        f.write(content)
    ref_out, ref_rejects = faultlib.clean_reference(src, p.workdir, f"{client}-{stem}")
    folder = os.path.join(p.depot, client, DATE)
    for name, ref in ((f"{stem}.csv", ref_out), (f"{stem}.rejects.csv", ref_rejects)):
        path = os.path.join(folder, name)
        t.check(os.path.isfile(path) and read(path) == read(ref),
                f"{client}: {name} is the output of {label}")


def run_for(st, client, output):
    runs = [r for r in faultlib.runs_of(st, client, DATE) if r["output"] == output]
    return runs[0] if len(runs) == 1 else None


def test_same_name_twice(p, t, client):
    first = SAMPLE_ORDERS
    second = SAMPLE_ORDERS.replace("A-", "B-") + BAD_ROW
    drop_and_run(p, client, "input.csv", first, 1)
    drop_and_run(p, client, "input.csv", second, 2)
    # A third drop with the first one's bytes is a new source too.
    st = drop_and_run(p, client, "input.csv", first, 3)
    t.check(faultlib.depot_files(p, client, DATE) ==
            ["input.1.csv", "input.1.rejects.csv", "input.2.csv", "input.2.rejects.csv",
             "input.csv", "input.rejects.csv"],
            f"{client}: three drops of input.csv, three pairs of outputs "
            f"({faultlib.depot_files(p, client, DATE)})")
    check_outputs_of(p, t, client, "input", first, "the first drop")
    check_outputs_of(p, t, client, "input.1", second, "the second drop")
    check_outputs_of(p, t, client, "input.2", first, "the third drop")
    archive = os.path.join(p.inbox, client, "archive", DATE)
    t.check(sorted(os.listdir(archive)) == ["input.1.csv", "input.2.csv", "input.csv"],
            f"{client}: the archive names match the outputs ({sorted(os.listdir(archive))})")
    t.check(read(os.path.join(archive, "input.1.csv")) == second.encode(),
            f"{client}: archive/input.1.csv is the second drop")
    for stem, rows_out in (("input", 3), ("input.1", 3), ("input.2", 3)):
        run = run_for(st, client, f"{client}/{DATE}/{stem}.csv")
        t.check(run is not None and run["rejects"] == f"{client}/{DATE}/{stem}.rejects.csv" and
                run["source"] == f"{client}/input.csv" and run["rows_out"] == rows_out,
                f"{client}: /status has one run for {stem}.csv with its real paths ({run})")
    t.check(run_for(st, client, f"{client}/{DATE}/input.1.csv")["rows_rejected"] == 1,
            f"{client}: the second run counts its own reject")
    files = st["clients"][client]["files"]
    t.check(f"{client}/{DATE}/input.1.rejects.csv" in files and len(files) == 6,
            f"{client}: /status lists the six depot files ({files})")
    code, page = harness.http_get(p.ports["status-checker"], "/")
    t.check(code == 200 and f"{client}/{DATE}/input.1.csv".encode() in page and
            f"{client}/{DATE}/input.2.csv".encode() in page,
            f"{client}: the page shows the real output paths")
    c = p.client()
    try:
        ids = [i for i in faultlib.msg_ids(c.stream_entries("orders.file-ready"))
               if i.startswith(f"file-ready:{client}:")]
    finally:
        c.close()
    t.check(len(ids) == 3 and len(set(ids)) == 3,
            f"{client}: three FileReady with three Nats-Msg-Ids ({ids})")


def test_rejects_suffix(p, t, client):
    """x.csv and x.rejects.csv in one run; y.rejects.csv, then y.csv."""
    x = SAMPLE_ORDERS + BAD_ROW
    x_rejects = SAMPLE_ORDERS.replace("A-", "R-")
    p.drop(client, "x.csv", x)
    drop_and_run(p, client, "x.rejects.csv", x_rejects, 2)
    y_rejects = SAMPLE_ORDERS.replace("A-", "Y-") + BAD_ROW.replace("A-9", "Y-9")
    y = SAMPLE_ORDERS.replace("A-", "Z-")
    drop_and_run(p, client, "y.rejects.csv", y_rejects, 3)
    st = drop_and_run(p, client, "y.csv", y, 4)
    t.check(faultlib.depot_files(p, client, DATE) ==
            ["x.csv", "x.rejects.1.csv", "x.rejects.1.rejects.csv", "x.rejects.csv",
             "y.csv", "y.rejects.1.csv", "y.rejects.1.rejects.csv", "y.rejects.csv"],
            f"{client}: a drop named like a rejects file takes <stem>.1 "
            f"({faultlib.depot_files(p, client, DATE)})")
    check_outputs_of(p, t, client, "x", x, "x.csv")
    check_outputs_of(p, t, client, "x.rejects.1", x_rejects, "x.rejects.csv")
    check_outputs_of(p, t, client, "y", y, "y.csv")
    check_outputs_of(p, t, client, "y.rejects.1", y_rejects, "y.rejects.csv")
    archive = sorted(os.listdir(os.path.join(p.inbox, client, "archive", DATE)))
    t.check(archive == ["x.csv", "x.rejects.1.csv", "y.csv", "y.rejects.1.csv"],
            f"{client}: archived under the names of their outputs ({archive})")
    run = run_for(st, client, f"{client}/{DATE}/x.rejects.1.csv")
    t.check(run is not None and run["source"] == f"{client}/x.rejects.csv" and
            run["rejects"] == f"{client}/{DATE}/x.rejects.1.rejects.csv",
            f"{client}: FileReady of x.rejects.csv names its real paths ({run})")


# name on disk (str, invalid UTF-8 as surrogate escapes), the source in the
# FileFailed event, the reason's phrase, the safe name in failed/<date>/.
UNUSABLE = [
    ("bad\nname.csv", "bad\\x0aname.csv", "contains a control character", "bad_name.csv"),
    ("tab\there\x7f.csv", "tab\\x09here\\x7f.csv", "contains a control character",
     "tab_here_.csv"),
    ("caf\udce9.csv", "caf\\xe9.csv", "is not valid UTF-8", "caf_.csv"),
    ("back\\slash.csv", "back\\\\slash.csv", "contains a backslash", "back_slash.csv"),
    ("L" * 226 + ".csv", "L" * 226 + ".csv", "is longer than 200 bytes", "L" * 196 + ".csv"),
]


def test_unusable_names(p, t, client):
    ft = p.ports["file-transformer"]
    series = 'dx_invalid_input_total{kind="unusable_name"}'
    before_counted = metric(ft, series)
    for name, _, _, _ in UNUSABLE:
        p.drop(client, name, SAMPLE_ORDERS)
    p.drop(client, "good.csv", SAMPLE_ORDERS)
    publish_order_date(p, client)

    def settled():
        st = p.status()
        fails = faultlib.failures_of(st, client, DATE)
        return st if len(fails) >= len(UNUSABLE) and faultlib.runs_of(st, client, DATE) else None
    st = harness.wait_until(settled, timeout=60, interval=0.2,
                            what=f"{client}: every unusable name failed, good.csv ran")
    fails = {f["source"]: f for f in faultlib.failures_of(st, client, DATE)}
    t.check(len(fails) == len(UNUSABLE), f"{client}: one FileFailed per drop ({list(fails)})")
    code, page = harness.http_get(p.ports["status-checker"], "/")
    page = page.decode("utf-8")
    failed_dir = os.path.join(p.inbox, client, "failed", DATE)
    for name, source, phrase, safe in UNUSABLE:
        f = fails.get(f"{client}/{source}")
        t.check(f is not None and f["permanent"] and phrase in f["reason"] and
                f"{client}/failed/{DATE}/{safe}" in f["reason"],
                f"{client}: {source!r} failed permanently, reason names {phrase!r} and where "
                f"it went ({f})")
        t.check(os.path.isfile(os.path.join(failed_dir, safe)) and
                read(os.path.join(failed_dir, safe)) == SAMPLE_ORDERS.encode(),
                f"{client}: {source!r} moved to failed/{DATE}/{safe}")
        t.check(not os.path.lexists(os.path.join(p.inbox, client, name)),
                f"{client}: {source!r} left the inbox")
        t.check(f"{client}/{source}" in page,
                f"{client}: the page shows the failure of {source!r}")
    t.check(page.count("unusable file name") >= len(UNUSABLE),
            f"{client}: the page shows each reason")
    t.check(run_for(st, client, f"{client}/{DATE}/good.csv") is not None,
            f"{client}: good.csv next to them is processed")
    t.check(metric(ft, series) - before_counted == len(UNUSABLE),
            f"{client}: dx_invalid_input_total{{kind=\"unusable_name\"}} counts each")
    # A second event for the same client and date: nothing left to fail.
    before = len(harness.log_records(p.workers["file-transformer"], f"no pending drop for {client}"))
    publish_order_date(p, client)
    harness.wait_until(lambda: len(harness.log_records(p.workers["file-transformer"],
                                                    f"no pending drop for {client}")) > before,
                       timeout=30, what=f"{client}: the second event handled")
    again = faultlib.failures_of(p.status(), client, DATE)
    t.check(len(again) == len(UNUSABLE), f"{client}: each unusable drop fails once "
            f"({len(again)} failures after a second event)")


CASES = ((test_same_name_twice, "1"), (test_rejects_suffix, "2"), (test_unusable_names, "3"))


def run_cases(p, t, prefix):
    for case, n in CASES:
        try:
            case(p, t, f"{prefix}{n}")
        except Exception as e:  # one case failing does not hide the others
            t.check(False, f"{prefix}{n} {case.__name__}: exception {e!r}")


FORMULA_HEADER = ("order_id,order_date,customer_id,customer_email,product_sku,product_name,"
                  "quantity,unit_price,currency,status,note\n")
# Clean rows with a formula in text cells, and one rejected row whose
# negative quantity and price are the client's text.
FORMULA_DROP = FORMULA_HEADER + (
    'F-1,2026-11-24,C1,a@b.c,S1,"=HYPERLINK(""http://x"",""y"")",2,12.50,EUR,paid,ok\n'
    "F-2,2026-11-24,+1+2,a@b.c,S2,=cmd|' /C calc'!A0,1,3.00,EUR,paid,-2+3\n"
    'F-3,2026-11-24,C3,a@b.c,@SUM(A1),"\t=1+2",1,1.00,EUR,paid,a=b\n'
    "F-4,2026-11-24,C4,a@b.c,S4,=x,-1,-2.00,EUR,paid,\n")
FORMULA_CLEAN = (
    "F-1,2026-11-24,C1,a@b.c,S1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",2,12.50,EUR,paid,,"
    "25.00,ok\n"
    "F-2,2026-11-24,'+1+2,a@b.c,S2,'=cmd|' /C calc'!A0,1,3.00,EUR,paid,,3.00,'-2+3\n"
    "F-3,2026-11-24,C3,a@b.c,'@SUM(A1),'=1+2,1,1.00,EUR,paid,,1.00,a=b\n")
FORMULA_REJECT = "5,invalid_quantity,F-4,2026-11-24,C4,a@b.c,S4,'=x,'-1,'-2.00,EUR,paid,\n"
FORMULA_CLEAN_VERBATIM = (
    'F-1,2026-11-24,C1,a@b.c,S1,"=HYPERLINK(""http://x"",""y"")",2,12.50,EUR,paid,,25.00,ok\n'
    "F-2,2026-11-24,+1+2,a@b.c,S2,=cmd|' /C calc'!A0,1,3.00,EUR,paid,,3.00,-2+3\n"
    "F-3,2026-11-24,C3,a@b.c,@SUM(A1),=1+2,1,1.00,EUR,paid,,1.00,a=b\n")
FORMULA_REJECT_VERBATIM = "5,invalid_quantity,F-4,2026-11-24,C4,a@b.c,S4,=x,-1,-2.00,EUR,paid,\n"


def clean_offline(p, name, content, **env):
    src = os.path.join(p.workdir, f"{name}.csv")
    with open(src, "w") as f:
        f.write(content)
    out, rejects = (os.path.join(p.workdir, f"{name}.{k}.csv") for k in ("out", "rejects"))
    res = subprocess.run([harness.binary("file-transformer"), "clean", src, out, rejects],
                         env=dict(os.environ, **env), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60)
    return res, out, rejects


def test_formula_guard(p, t, client):
    neutralised = metric(p.ports["file-transformer"],
                         f'dx_cells_neutralised_total{{client_id="{client}"}}')
    st = drop_and_run(p, client, "input.csv", FORMULA_DROP, 1)
    clean, rejects = bodies(p, client)
    t.check(clean == FORMULA_CLEAN,
            f"{client}: every formula in a text cell starts with ' in the clean file:\n{clean}")
    t.check(rejects == FORMULA_REJECT,
            f"{client}: and in the rejects file, numbers as written included:\n{rejects}")
    neutralised = metric(p.ports["file-transformer"],
                         f'dx_cells_neutralised_total{{client_id="{client}"}}') - neutralised
    t.check(neutralised == 9, f"{client}: dx_cells_neutralised_total += 9 (got {neutralised})")
    run = run_for(st, client, f"{client}/{DATE}/input.csv")
    t.check(run is not None and run["rows_out"] == 3 and run["rows_rejected"] == 1,
            f"{client}: three clean rows, one rejected ({run})")
    # Offline, the same rule; CSV_FORMULA_GUARD=0 writes the cells as they are.
    res, out, rej = clean_offline(p, "formulas", FORMULA_DROP)
    t.check(res.returncode == 0 and read(out).decode().split("\n", 1)[1] == clean and
            read(rej).decode().split("\n", 1)[1] == rejects and
            b'"cells_neutralised":9' in res.stdout,
            f"file-transformer clean applies the same guard ({res.stdout[-200:]!r})")
    res, out, rej = clean_offline(p, "verbatim", FORMULA_DROP, CSV_FORMULA_GUARD="0")
    t.check(res.returncode == 0 and
            read(out).decode().split("\n", 1)[1] == FORMULA_CLEAN_VERBATIM and
            read(rej).decode().split("\n", 1)[1] == FORMULA_REJECT_VERBATIM and
            b'"cells_neutralised":0' in res.stdout,
            f"CSV_FORMULA_GUARD=0: cells written as they are ({read(out)[-200:]!r})")
    # A bad value: one line naming the variable, exit 2, in service mode and offline.
    res, _, _ = clean_offline(p, "bad", FORMULA_DROP, CSV_FORMULA_GUARD="maybe")
    lines = res.stdout.decode().strip().splitlines()
    t.check(res.returncode == 2 and len(lines) == 1 and "CSV_FORMULA_GUARD" in lines[0],
            f"file-transformer clean with CSV_FORMULA_GUARD=maybe: exit 2, one line ({res})")
    env = p.env("file-transformer", CSV_FORMULA_GUARD="maybe", PORT=str(harness.free_port()))
    res = subprocess.run(harness.worker_command("file-transformer"), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    lines = res.stdout.decode().strip().splitlines()
    t.check(res.returncode == 2 and len(lines) == 1 and "CSV_FORMULA_GUARD" in lines[0],
            f"file-transformer service with CSV_FORMULA_GUARD=maybe: exit 2, one line "
            f"({res.returncode}, {lines})")


def test_formula_guard_off(p, t, client):
    """A transformer started with CSV_FORMULA_GUARD=0 writes cells verbatim."""
    harness.stop_process(p.workers.pop("file-transformer"))
    p.start_worker("file-transformer", log_name="file-transformer-verbatim",
                   CSV_FORMULA_GUARD="0")
    drop_and_run(p, client, "input.csv", FORMULA_DROP, 1)
    clean, rejects = bodies(p, client)
    t.check(clean == FORMULA_CLEAN_VERBATIM,
            f"{client}: CSV_FORMULA_GUARD=0 keeps the cells as they are:\n{clean}")
    t.check(rejects == FORMULA_REJECT_VERBATIM,
            f"{client}: in the rejects too:\n{rejects}")


def run_file(t):
    with harness.pipeline_run(t, "outputs") as p:
        p.start()
        run_cases(p, t, "US")
        for case, client in ((test_formula_guard, "US5"), (test_formula_guard_off, "US6")):
            try:
                case(p, t, client)
            except Exception as e:  # one case failing does not hide the others
                t.check(False, f"{client} {case.__name__}: exception {e!r}")


def run_crash(t):
    """SIGKILL in the middle of a second input.csv of the day: the event comes
    back after ACK_WAIT and the rerun writes input.1.csv again (the archive
    still has no input.1.csv), byte-identical, and nothing else."""
    client = "US7"
    with harness.pipeline_run(t, "outputs-crash", extra_env={"ACK_WAIT": "5"}) as p:
        p.start()
        drop_and_run(p, client, "input.csv", SAMPLE_ORDERS, 1)
        big = faultlib.write_orders(os.path.join(p.workdir, "big.csv"), 450000, prefix="K")
        ref_out, ref_rejects = faultlib.clean_reference(big, p.workdir, "big")
        faultlib.copy_drop(p, client, "input.csv", big)
        ft = p.workers["file-transformer"]
        publish_order_date(p, client)
        tmp = faultlib.wait_mid_file(p.depot, ft)
        os.killpg(ft.pid, signal.SIGKILL)
        harness.stop_process(ft)
        t.check(os.path.basename(tmp).startswith(".input.1."),
                f"{client}: killed while writing the second drop's input.1 outputs ({tmp})")
        p.start_worker("file-transformer", log_name="file-transformer-2")
        st = wait_run_count(p, client, 2, f"{client}: the second drop after the crash")
        folder = os.path.join(p.depot, client, DATE)
        t.check(faultlib.depot_files(p, client, DATE) ==
                ["input.1.csv", "input.1.rejects.csv", "input.csv", "input.rejects.csv"],
                f"{client}: one copy of each output after the crash "
                f"({faultlib.depot_files(p, client, DATE)})")
        t.check(faultlib.sha256_file(os.path.join(folder, "input.1.csv")) ==
                faultlib.sha256_file(ref_out) and
                faultlib.sha256_file(os.path.join(folder, "input.1.rejects.csv")) ==
                faultlib.sha256_file(ref_rejects),
                f"{client}: the rerun's input.1 outputs are byte-identical to file-transformer clean")
        check_outputs_of(p, t, client, "input", SAMPLE_ORDERS, "the first drop, untouched")
        t.check(faultlib.temp_files(p.depot) == [],
                f"{client}: no temporary file left ({faultlib.temp_files(p.depot)})")
        archive = sorted(os.listdir(os.path.join(p.inbox, client, "archive", DATE)))
        t.check(archive == ["input.1.csv", "input.csv"], f"{client}: archived once ({archive})")
        t.check(sorted(r["output"] for r in faultlib.runs_of(st, client, DATE)) ==
                [f"{client}/{DATE}/input.1.csv", f"{client}/{DATE}/input.csv"],
                f"{client}: two runs on /status, one per drop")


def run_sftp(t):
    with faultlib.sftp_pipeline(t, "outputs-sftp") as (p, _server):
        p.start()
        run_cases(p, t, "US1")
        t.check(faultlib.temp_files(p.depot) == [], "sftp: no temporary file in the depot")


def main():
    t = harness.TestRun("test_outputs")
    run_file(t)
    run_crash(t)
    run_sftp(t)
    # The workers have stopped: a sanitizer build has written its reports.
    reports = [line for w in harness._workdirs for line in faultlib.sanitizer_reports(w)]
    t.check(reports == [], f"no sanitizer report in the worker logs ({reports[:3]})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
