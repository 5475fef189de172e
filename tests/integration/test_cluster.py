"""Three file-transformer replicas on a three-node nats-server cluster (issue 6).

Three nats-server processes on loopback (-cluster/-routes, JetStream, each
its own store dir and server name), the ORDERS stream with 3 replicas
(STREAM_REPLICAS=3), three file-transformer replicas sharing the one durable
consumer, one status-checker; every worker gets the three URLs in NATS_URL.

1. 12 drops: each processed exactly once (one FileReady per drop, each output
   once in the depot, each drop archived once, status counts each once).
2. 12 more drops for another date; the stream leader is killed with SIGKILL
   in the middle of the run: nothing is lost, nothing is doubled.

Figures (how the work spread, the leader change) are printed, not asserted.
"""

import json
import os
import shutil
import signal
import sys
import time

import faultlib
import harness

DATE1 = "2026-11-24"
DATE2 = "2026-11-25"
CLIENTS = [f"US{n}" for n in range(41, 53)]


def figure(text):
    print(f"figure: {text}", flush=True)


class NatsNode(harness.NatsServer):
    """One node of the cluster: harness.NatsServer plus routes."""

    def __init__(self, workdir, name, cluster_port, route_ports):
        super().__init__(os.path.join(workdir, name))
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.extra_args = [
            "-n", name, "--cluster_name", "dx",
            "--cluster", f"nats://127.0.0.1:{cluster_port}",
            "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in route_ports),
        ]


class Cluster:
    def __init__(self, workdir):
        cluster_ports = [harness.free_port() for _ in range(3)]
        self.nodes = [NatsNode(workdir, f"n{i + 1}", cluster_ports[i],
                               [p for j, p in enumerate(cluster_ports) if j != i])
                      for i in range(3)]

    @property
    def url(self):
        return ",".join(n.url for n in self.nodes)

    def start(self):
        for n in self.nodes:
            n.start()
        # JetStream answers once the meta group has a leader.
        harness.wait_until(lambda: self.js_ready(), timeout=60, what="JetStream cluster ready")
        return self

    def js_ready(self):
        c = self.client()
        try:
            info = json.loads(c.request("$JS.API.INFO", timeout=2))
            return "error" not in info
        finally:
            c.close()

    def alive(self):
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def client(self, avoid=None):
        for n in self.alive():
            if n is not avoid:
                return harness.NatsClient(n.port)
        raise ConnectionError("no NATS node alive")

    def stop(self):
        for n in self.nodes:
            n.stop()


def stream_leader(cluster):
    c = cluster.client()
    try:
        return c.stream_info().get("cluster", {}).get("leader")
    finally:
        c.close()


def start_replica(p, name):
    port = harness.free_port()
    proc = harness.start_process([harness.binary("file-transformer")],
                                 os.path.join(p.workdir, f"{name}.log"),
                                 env=p.env("file-transformer", PORT=port))
    p.workers[name] = proc
    harness.wait_until(lambda: proc.poll() is None and harness.http_get(port, "/_/ready")[0] == 200,
                       timeout=60, what=f"{name} ready")
    return proc


def wait_dates(p, date, timeout):
    def done():
        st = p.status()
        return st if all(faultlib.runs_of(st, c, date) for c in CLIENTS) else None
    return harness.wait_until(done, timeout=timeout, what=f"every client done for {date}")


def check_exactly_once(t, p, cluster, date, replicas, label):
    st = wait_dates(p, date, timeout=120)
    for client in CLIENTS:
        t.check(len(faultlib.runs_of(st, client, date)) == 1,
                f"{label}: {client} counted once in status")
        t.check(faultlib.depot_files(p, client, date) == ["input.csv", "input.rejects.csv"],
                f"{label}: {client} has one copy of each output "
                f"({faultlib.depot_files(p, client, date)})")
        # The drop is archived after its file-ready, which is what
        # wait_dates() saw: the move may still be on its way.
        archived = os.path.join(p.inbox, client, "archive", date)
        t.check(harness.eventually(lambda: os.path.isdir(archived)) and
                os.listdir(archived) == ["input.csv"],
                f"{label}: {client} drop archived once")
        t.check(not os.path.exists(os.path.join(p.inbox, client, "input.csv")),
                f"{label}: {client} drop left the inbox")
    t.check(faultlib.temp_files(p.depot) == [], f"{label}: no temporary file in the depot")

    # Each query on a fresh connection to a live node, retried: right after a
    # node is killed, the stream may still be electing its new leader.
    def ask(question):
        c = cluster.client()
        try:
            return question(c)
        finally:
            c.close()

    entries = harness.wait_until(
        lambda: ask(lambda c: [(h, d) for h, d in c.stream_entries("orders.file-ready")
                               if f":{date}:".encode() in h.encode()]),
        timeout=60, what="the stream's file-ready messages")
    harness.wait_until(lambda: ask(lambda c: (lambda i: i.get("num_ack_pending") == 0 and
                                              i.get("num_pending") == 0)(
        c.consumer_info("file-transformer"))), timeout=90, what="file-transformer consumer idle")
    ids = faultlib.msg_ids(entries)
    t.check(len(ids) == len(CLIENTS) and len(set(ids)) == len(CLIENTS),
            f"{label}: one FileReady per drop in the stream ({len(ids)}, {len(set(ids))} distinct)")
    per_replica = {name: sum(1 for r in harness.log_records(proc, "file ready")
                             if r.get("order_date") == date)
                   for name, proc in replicas.items()}
    figure(f"{label}: files per replica {per_replica}")
    return per_replica


def main():
    t = harness.TestRun("test_cluster")
    p = harness.Pipeline("cluster", extra_env={"STREAM_REPLICAS": "3", "ACK_WAIT": "10"})
    cluster = Cluster(p.workdir)
    p.nats = cluster.nodes[0]  # p.client() and the default NATS_URL; overridden below
    p.extra_env["NATS_URL"] = cluster.url
    try:
        started = time.time()
        cluster.start()
        figure(f"3-node cluster with JetStream ready in {time.time() - started:.1f} s")
        p.start_worker("status-checker")
        replicas = {f"file-transformer-{i}": start_replica(p, f"file-transformer-{i}")
                    for i in (1, 2, 3)}
        c = cluster.client()
        try:
            info = c.stream_info()
        finally:
            c.close()
        t.check(info["config"]["num_replicas"] == 3, "the ORDERS stream has 3 replicas")
        t.check(len(info.get("cluster", {}).get("replicas", [])) == 2,
                f"the stream leader has 2 peers ({info.get('cluster')})")

        # 1. Twelve drops, three replicas, one durable consumer.
        data = os.path.join(p.workdir, "data")
        os.makedirs(data)
        small = faultlib.write_orders(os.path.join(data, "small.csv"), 3000)
        for client in CLIENTS:
            faultlib.copy_drop(p, client, "input.csv", small)
        code, out = p.run_checker("--once", "--date", DATE1)
        t.check(code == 0, f"daily-checker --once exits 0 ({out[-200:]})")
        per = check_exactly_once(t, p, cluster, DATE1, replicas, "replicas")
        t.check(sum(per.values()) == len(CLIENTS),
                f"without faults each drop is processed by exactly one replica ({per})")

        # 2. Twelve larger drops; the stream leader killed mid-run.
        # Big enough that the run lasts well past the first file in flight,
        # and the leader found before the run: the kill comes as soon as the
        # first drop is being written, whatever the machine's speed.
        medium = faultlib.write_orders(os.path.join(data, "medium.csv"), 150000, prefix="M")
        for client in CLIENTS:
            faultlib.copy_drop(p, client, "input.csv", medium)
        leader = stream_leader(cluster)
        victim = next((n for n in cluster.nodes if n.name == leader), cluster.nodes[0])
        code, out = p.run_checker("--once", "--date", DATE2)
        t.check(code == 0, f"daily-checker --once exits 0 on the cluster ({out[-200:]})")
        harness.wait_until(lambda: faultlib.temp_files(p.depot) or any(
            r.get("order_date") == DATE2 for proc in replicas.values()
            for r in harness.log_records(proc, "file ready")),
            timeout=60, interval=0.01, what="the first file of the second run in flight")
        victim.stop(sig=signal.SIGKILL)
        killed_at = time.time()
        done = sum(1 for proc in replicas.values() for r in harness.log_records(proc, "file ready")
                   if r.get("order_date") == DATE2)
        t.check(done < len(CLIENTS), f"the node was killed mid-run ({done}/{len(CLIENTS)} done)")
        check_exactly_once(t, p, cluster, DATE2, replicas, "node killed")
        figure(f"stream leader {leader} killed; run completed {time.time() - killed_at:.1f} s "
               f"later; new leader {stream_leader(cluster)}")
        for name, proc in list(replicas.items()) + [("status-checker",
                                                     p.workers["status-checker"])]:
            t.check(proc.poll() is None, f"{name} kept running")
    except Exception as e:
        t.check(False, f"exception: {e!r}")
    finally:
        for proc in list(p.workers.values()):
            harness.stop_process(proc)
        p.workers.clear()
        cluster.stop()
        reports = faultlib.sanitizer_reports(p.workdir)
        t.check(reports == [], f"no sanitizer report in the worker logs ({reports[:3]})")
        failed = t.failed
        if failed:
            p.dump_logs()
            for n in cluster.nodes:
                for name in os.listdir(n.workdir):
                    if name.endswith(".log"):
                        print(f"----- {n.name}/{name} -----", file=sys.stderr)
                        for line in harness.read_log_lines(os.path.join(n.workdir, name))[-30:]:
                            print(line, file=sys.stderr)
        if not failed:
            shutil.rmtree(p.workdir, ignore_errors=True)
        else:
            print(f"work folder kept: {p.workdir}", file=sys.stderr)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
