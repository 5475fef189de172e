"""The full chain with INBOX_URL and DEPOT_URL both on sftp:// (issue 4).

A real OpenSSH sshd (tests/integration/sshd.py) serves the inbox and the
depot on a free loopback port; nats-server and the three workers run as in
test_chain.py.  The sshd serves a folder of this machine, so the test checks
the results directly on disk.

1. daily-checker --once -> file-transformer -> status-checker on sftp://.
2. A hostile client id (refused), and a client folder planted as a symbolic
   link to another client's folder (never followed).
3. A 100 MB drop, with sshd stopped in the middle of the transfer and started
   again: the event is retried, the run completes, the output is
   byte-identical to `file-transformer clean`, no partial or temporary file
   is left in the depot, and the transformer's memory stays bounded.
4. Wrong host key and wrong user key: FileFailed with permanent=true and the
   reason, the drop kept in the inbox.
5. Secrets: no SFTP key material in the logs (4.), and nats-server runs with
   user/password authorisation: the NATS password never appears in any
   worker's log, /metrics, /status or the page (issue 11, item 6).
"""

import json
import os
import re
import sys
import time

import faultlib
import harness
from harness import SAMPLE_ORDERS
from sshd import Sshd

DATE = "2026-11-24"
NATS_PASSWORD = "Nats-Secret-4711"
BIG_ROWS = 1_200_000  # about 100 MB at ~88 bytes a row
# The transformer's own baseline (nats.c, libssh, OpenSSL, the cleaner) is
# about 30 MB; a drop held in memory would add its 100 MB.
RSS_LIMIT_KB = 64 * 1024


def figure(text):
    print(f"figure: {text}", flush=True)


def publish_order_date(p, client_id):
    c = p.client()
    try:
        c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": client_id}))
    finally:
        c.close()


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def test_full_chain(p, t):
    p.drop("US1", "input.csv", SAMPLE_ORDERS)
    p.drop("US2", "input.csv", SAMPLE_ORDERS.replace("A-", "B-"))
    code, out = p.run_checker("--once", "--date", DATE)
    t.check(code == 0, f"daily-checker --once lists the sftp:// inbox (exit {code}: {out[-300:]})")
    published = [l for l in out.splitlines() if '"order-date published"' in l]
    t.check(len(published) == 2, f"one order-date per client (got {len(published)})")
    st = p.wait_runs(["US1", "US2"], DATE, timeout=60)
    for client in ("US1", "US2"):
        run = st["clients"][client]["dates"][DATE]
        t.check(run["rows_in"] == 3, f"{client} rows_in 3 (got {run['rows_in']})")
        t.check(faultlib.depot_files(p, client, DATE) == ["input.csv", "input.rejects.csv"],
                f"{client}: output and rejects in the sftp:// depot "
                f"({faultlib.depot_files(p, client, DATE)})")
        # The drop is archived after file-ready is published, which is what
        # wait_runs() saw: the move may still be on its way.
        archived = os.path.join(p.inbox, client, "archive", DATE, "input.csv")
        t.check(harness.eventually(lambda: os.path.isfile(archived)),
                f"{client}: drop archived under archive/{DATE}/ on the server")
        t.check(not os.path.exists(os.path.join(p.inbox, client, "input.csv")),
                f"{client}: drop left the inbox")
        t.check(st["clients"][client]["files_in_depot"] == 2,
                f"{client}: status-checker lists 2 files in the sftp:// depot")
    t.check(faultlib.temp_files(p.depot) == [], "no temporary file in the depot")


def test_hostile_clients(p, t):
    for hostile in ("../US1", "US1/../US2", "US1;rm -rf /"):
        code, out = p.run_checker("--once", "--date", DATE, "--client", hostile)
        t.check(code == 1 and "client id refused" in out,
                f"daily-checker refuses {hostile!r} (exit {code})")
    ft = p.workers["file-transformer"]
    publish_order_date(p, "../US1")
    harness.wait_until(lambda: any("CLIENT_PATTERN" in r["msg"] for r in harness.log_records(ft)),
                       what="hostile client id refused by the transformer")
    # A client folder that is a link to another client's folder: the sftp
    # server would follow it, the storage must not.
    p.drop("US3", "input.csv", SAMPLE_ORDERS.replace("A-", "C-"))
    os.symlink("US3", os.path.join(p.inbox, "US4"))
    publish_order_date(p, "US4")
    st = harness.wait_until(lambda: (lambda s: s if faultlib.failures_of(s, "US4") else None)(
        p.status()), timeout=60, what="FileFailed of US4")
    fails = faultlib.failures_of(st, "US4")
    t.check(len(fails) == 1 and fails[0]["permanent"] is True and
            "symbolic link" in fails[0]["reason"],
            f"a client folder that is a link is refused, permanently ({fails})")
    t.check(os.path.isfile(os.path.join(p.inbox, "US3", "input.csv")),
            "US3's drop was not taken through the US4 link")
    t.check(not os.path.exists(os.path.join(p.depot, "US4")), "nothing written for US4")
    t.check(not os.path.exists(os.path.join(p.depot, "US3")), "nothing written for US3")
    os.unlink(os.path.join(p.inbox, "US4"))


def wait_depot_temp(p, client, min_bytes, timeout=120):
    """Waits until the transformer's temporary output for client holds data."""
    folder = os.path.join(p.depot, client, DATE)

    def mid():
        for path in faultlib.temp_files(folder):
            try:
                if os.path.getsize(path) >= min_bytes:
                    return path
            except OSError:
                pass
        return None
    return harness.wait_until(mid, timeout=timeout, interval=0.02, what="output mid-transfer")


def test_big_drop_server_restart(p, t, server, big, ref_out, ref_rejects):
    ft = p.workers["file-transformer"]
    baseline = vm_hwm_kb(ft.pid)
    faultlib.copy_drop(p, "US5", "input.csv", big)
    publish_order_date(p, "US5")
    tmp = wait_depot_temp(p, "US5", 10 << 20)
    server.stop()
    stopped_at = time.time()
    t.check(not os.path.exists(os.path.join(p.depot, "US5", DATE, "input.csv")),
            "stopped in the middle: no output under its final name")
    time.sleep(2)
    t.check(faultlib.depot_files(p, "US5", DATE) == [] or all(
        n.startswith(".") for n in faultlib.depot_files(p, "US5", DATE)),
        "while the server is down only the hidden temporary file is there")
    server.start()
    st = p.wait_runs(["US5"], DATE, timeout=240)
    figure(f"sshd stopped mid-transfer -> run complete {time.time() - stopped_at:.1f} s "
           f"after the stop ({os.path.getsize(big) / 1e6:.0f} MB drop)")
    retried = [r for r in harness.log_records(ft, "file failed")
               if r.get("client_id") == "US5" and r.get("will_retry")]
    t.check(len(retried) >= 1 and not retried[0].get("permanent"),
            f"the broken transfer was a transient failure, retried ({len(retried)})")
    out_dir = os.path.join(p.depot, "US5", DATE)
    ref_sha = faultlib.sha256_file(ref_out)
    t.check(faultlib.sha256_file(os.path.join(out_dir, "input.csv")) == ref_sha,
            "the output is byte-identical to file-transformer clean")
    t.check(faultlib.sha256_file(os.path.join(out_dir, "input.rejects.csv")) ==
            faultlib.sha256_file(ref_rejects), "the rejects are byte-identical too")
    t.check(faultlib.depot_files(p, "US5", DATE) == ["input.csv", "input.rejects.csv"],
            f"one copy of each output ({faultlib.depot_files(p, 'US5', DATE)})")
    t.check(faultlib.temp_files(p.depot) == [],
            f"no temporary file left in the depot ({faultlib.temp_files(p.depot)}, was {tmp})")
    t.check(sorted(os.listdir(os.path.join(p.inbox, "US5", "archive", DATE))) == ["input.csv"],
            "the drop is archived once, after the outputs")
    runs = faultlib.runs_of(st, "US5", DATE)
    t.check(len(runs) == 1 and runs[0]["sha256"] == ref_sha, "status counts the file once")
    hwm = vm_hwm_kb(ft.pid)
    figure(f"file-transformer peak RSS (VmHWM): {baseline / 1024:.1f} MB after the small drops, "
           f"{hwm / 1024:.1f} MB after the 100 MB drop over sftp://")
    limit = harness.rss_limit_kb(harness.binary("file-transformer"), RSS_LIMIT_KB)
    t.check(0 < hwm < limit, f"transformer memory stays bounded ({hwm} kB, limit {limit} kB)")


def test_bad_credentials(p, t, server):
    """The transformer restarted with a wrong host key, then a wrong user
    key: each drop fails permanently at once, with the reason."""
    harness.stop_process(p.workers.pop("file-transformer"))
    cases = (
        ("US6", "host key", {"SFTP_KNOWN_HOSTS": server.other_known_hosts()},
         "does not match SFTP_KNOWN_HOSTS", "host_key"),
        ("US7", "user key", {"SFTP_KEY_FILE": server.other_user_key()}, "authentication",
         "auth"),
    )
    for client, what, env, reason, kind in cases:
        p.drop(client, "input.csv", SAMPLE_ORDERS)
        ft = p.start_worker("file-transformer", wait_ready=False,
                            log_name=f"file-transformer-{client}", **env)
        time.sleep(1)
        publish_order_date(p, client)
        st = harness.wait_until(lambda: (lambda s: s if faultlib.failures_of(s, client, DATE)
                                         else None)(p.status()), timeout=60,
                                what=f"FileFailed of {client}")
        fails = faultlib.failures_of(st, client, DATE)
        t.check(len(fails) == 1 and fails[0]["permanent"] is True,
                f"wrong {what}: one FileFailed with permanent=true ({fails})")
        t.check(any(reason in f["reason"] for f in fails),
                f"wrong {what}: the reason says so ({[f['reason'] for f in fails]})")
        t.check(os.path.isfile(os.path.join(p.inbox, client, "input.csv")),
                f"wrong {what}: the drop stays in the inbox")
        with open(server.key_file) as f:
            secret = [l.strip() for l in f if l.strip() and "PRIVATE KEY" not in l]
        logs = "\n".join(harness.read_log_lines(ft))
        t.check(not any(l in logs for l in secret), f"wrong {what}: no key material in the logs")
        code, metrics = harness.http_get(p.ports["file-transformer"], "/metrics")
        t.check(code == 200 and re.search(
            rf'dx_sftp_errors_total{{kind="{kind}"}} [1-9]'.encode(), metrics) is not None,
            f"wrong {what}: counted in dx_sftp_errors_total{{kind=\"{kind}\"}}")
        harness.stop_process(p.workers.pop(f"file-transformer-{client}"))


def test_no_nats_secret(p, t):
    found = p.secret_leaks(NATS_PASSWORD)
    t.check(found == [], f"the NATS password never appears ({found})")


def main():
    t = harness.TestRun("test_sftp_chain")
    server = Sshd()
    p = None
    try:
        server.start()
        os.makedirs(server.path("inbox"))
        os.makedirs(server.path("depot"))
        p = harness.Pipeline("sftp-chain", inbox_url=server.url("inbox"),
                             depot_url=server.url("depot"),
                             extra_env=dict(server.env(), ACK_WAIT="30", MAX_DELIVER="20"))
        p.nats.user, p.nats.password = "dataretailx", NATS_PASSWORD
        # The workers reach the folders through sshd; the test reads them on disk.
        p.inbox = server.path("inbox")
        p.depot = server.path("depot")
        big = faultlib.write_orders(os.path.join(p.workdir, "big.csv"), BIG_ROWS, prefix="E")
        ref_out, ref_rejects = faultlib.clean_reference(big, p.workdir, "big")
        p.start()
        test_full_chain(p, t)
        test_hostile_clients(p, t)
        test_big_drop_server_restart(p, t, server, big, ref_out, ref_rejects)
        test_bad_credentials(p, t, server)
        test_no_nats_secret(p, t)
    except Exception as e:  # a crash of the test is a failure, with logs
        t.check(False, f"exception: {e!r}")
    finally:
        if p is not None:
            if t.failed:
                p.dump_logs()
                print(f"----- sshd -----\n{server.log_tail()}", file=sys.stderr)
            p.stop()
        server.cleanup()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
