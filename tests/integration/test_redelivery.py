"""An event in progress is never taken by a second replica (issue 11, item 8).

Many small drops over SFTP (a real sshd), ACK_WAIT=2 and two file-transformer
replicas sharing the durable consumer: each event covers one client's 100
drops, so handling it takes well over ACK_WAIT.  The transformer must keep
telling JetStream that the event is in progress, by time, whatever it is
doing (listing, reading, writing, renaming); otherwise JetStream gives the
event to the other replica while the first is still on it, and both work on
the same drops at once.

Checks: every drop processed exactly once (one "file ready" per drop across
both replicas, each drop archived once, none left in the inbox), no event
redelivered (the consumer's delivery count, each replica's
dx_events_redelivered_total), and no temporary file left in the depot.
The redelivery count is printed as a figure.
"""

import os
import re
import sys

import faultlib
import harness

DATE = "2026-11-24"
CLIENTS = ["US61", "US62", "US63"]
DROPS_PER_CLIENT = 100
# The archive's name for a second drop of the same name: d001.1.csv.
SECOND_COPY = re.compile(r"\.[0-9]+\.csv$")


def figure(text):
    print(f"figure: {text}", flush=True)


def metric_sum(port, name):
    code, body = harness.http_get(port, "/metrics")
    if code != 200:
        return None
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    t = harness.TestRun("test_redelivery")
    with faultlib.sftp_pipeline(t, "redelivery", ACK_WAIT="2", MAX_DELIVER="20") as (p, _server):
        body = "".join(harness.SAMPLE_ORDERS.splitlines(keepends=True)[:3])
        for client in CLIENTS:
            for i in range(DROPS_PER_CLIENT):
                p.drop(client, f"d{i:03d}.csv", body.replace("A-", f"{client}-{i}-"))
        p.start_nats()
        p.start_worker("status-checker")
        replicas = {name: p.start_replica("file-transformer", name)
                    for name in ("file-transformer-1", "file-transformer-2")}
        ports = {name: p.ports[name] for name in replicas}
        code, out = p.run_checker("--once", "--date", DATE)
        t.check(code == 0, f"daily-checker --once exits 0 ({out[-200:]})")
        total = len(CLIENTS) * DROPS_PER_CLIENT

        def all_done():
            ready = [r for proc in replicas.values() for r in harness.log_records(proc, "file ready")]
            left = [n for c in CLIENTS for n in os.listdir(os.path.join(p.inbox, c))
                    if n.endswith(".csv")]
            return ready if len(ready) >= total and not left else None

        harness.wait_until(all_done, timeout=300, interval=0.5, what="every drop processed")
        c = p.client()
        try:
            harness.wait_until(lambda: (lambda i: i.get("num_ack_pending") == 0 and
                                        i.get("num_pending") == 0)(
                c.consumer_info("file-transformer")), timeout=60,
                what="file-transformer consumer idle")
            info = c.consumer_info("file-transformer")
        finally:
            c.close()
        ready = [r for proc in replicas.values() for r in harness.log_records(proc, "file ready")]
        sources = [r.get("source") for r in ready]
        # The consumer's sequence counts every delivery, first or not; each
        # of the len(CLIENTS) events is delivered once when none is redelivered.
        deliveries = info.get("delivered", {}).get("consumer_seq", -1)
        redelivered = deliveries - len(CLIENTS)
        figure(f"{total} drops, ACK_WAIT=2, 2 replicas: {len(ready)} 'file ready', "
               f"{deliveries} deliveries of {len(CLIENTS)} events: {redelivered} redeliveries")
        t.check(len(ready) == total and len(set(sources)) == total,
                f"each drop processed exactly once ({len(ready)} 'file ready', "
                f"{len(set(sources))} distinct sources, {total} drops)")
        t.check(redelivered == 0, f"no event redelivered ({redelivered} redeliveries)")
        handled = sum(1 for proc in replicas.values() for r in harness.log_records(proc)
                      if str(r.get("msg", "")).startswith("processing order-date"))
        t.check(handled == len(CLIENTS),
                f"each order-date handled once ({handled} for {len(CLIENTS)} events)")
        for client in CLIENTS:
            archived = os.path.join(p.inbox, client, "archive", DATE)
            names = sorted(os.listdir(archived)) if os.path.isdir(archived) else []
            extra = [n for n in names if SECOND_COPY.search(n)]
            t.check(names == [f"d{i:03d}.csv" for i in range(DROPS_PER_CLIENT)],
                    f"{client}: each drop archived once under its own name "
                    f"({len(names)} archived, second copies: {extra[:3]})")
        t.check(faultlib.temp_files(p.depot) == [],
                f"no temporary file in the depot ({faultlib.temp_files(p.depot)[:3]})")
        for name, port in ports.items():
            value = metric_sum(port, "dx_events_redelivered_total")
            t.check(value == 0, f"{name}: dx_events_redelivered_total is 0 ({value})")
        for name, proc in replicas.items():
            t.check(proc.poll() is None, f"{name} kept running")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
