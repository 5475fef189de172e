"""The workers' /metrics as a real Prometheus server sees them (issue 7).

Starts the three workers as services (daily-checker too: no --once, no
SCHEDULE, triggered by POST /), a real Prometheus (Debian `prometheus`) on a
free loopback port that scrapes their /metrics every second with one job per
worker, runs a pipeline (two clients with drops, one drop that fails
permanently, one drop whose depot folder cannot be created so that it fails
transiently, is nak'd, then given up on its last delivery, and one
undecodable message), waits until every job was scraped
after the pipeline settled, and queries Prometheus' HTTP API for the series
and values the run must have produced.  Each worker's /metrics also goes
through `promtool check metrics`.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import harness
from harness import SAMPLE_ORDERS

PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN", "/usr/bin/promtool")
WORKERS = ("daily-checker", "file-transformer", "status-checker")
DATE = "2026-11-24"

# US1: 3 good rows, one exact duplicate, one row with an impossible date.
US1_DROP = SAMPLE_ORDERS + (
    "A-3,2026-11-24,C3,cyd@example.com,SKU-3,Pot,3,19.99,EUR,delivered\n"
    "A-4,2026-02-31,C4,dan@example.com,SKU-4,Cup,1,3.00,EUR,delivered\n")
US1_ROWS = 5
US2_DROP = SAMPLE_ORDERS.replace("A-", "B-")
US2_ROWS = 3
# Unusable as a whole: a required column is missing.
US3_DROP = "order_id,order_date\nZ-1,2026-11-24\n"
# US4's drop is fine, but a regular file stands where its depot folder must be
# created: a transient failure, retried once (MAX_DELIVER=2) then published.
MAX_DELIVER = "2"

# The only labels a dx_ series may carry: nothing unbounded (no file name,
# no trace id) ever becomes a label.
ALLOWED_LABELS = {"__name__", "job", "instance", "subject", "client_id", "reason", "kind", "code",
                  "worker", "version", "le", "metric"}


class Prometheus:
    """A Prometheus server on loopback with a generated scrape configuration."""

    def __init__(self, workdir, targets):
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        self.port = harness.free_port()
        self.config = os.path.join(self.dir, "prometheus.yml")
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s",
                 "  evaluation_interval: 1s", "scrape_configs:"]
        for job, port in targets.items():
            lines += [f"  - job_name: {job}", "    metrics_path: /metrics",
                      "    static_configs:", f"      - targets: ['127.0.0.1:{port}']"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        self.proc = harness.start_process(
            [PROMETHEUS, f"--config.file={self.config}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            os.path.join(self.dir, "..", "prometheus.log"))
        harness.wait_until(
            lambda: self.proc.poll() is None and harness.http_get(self.port, "/-/ready")[0] == 200,
            timeout=30, what="prometheus ready")
        return self

    def stop(self):
        if self.proc is not None:
            harness.stop_process(self.proc)
            self.proc = None

    def query(self, expr):
        """Instant query; returns {frozenset(labels.items()): float}."""
        code, body = harness.http_get(
            self.port, "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        reply = json.loads(body)
        if code != 200 or reply.get("status") != "success":
            raise ValueError(f"query {expr!r} answered {code}: {body[:300]!r}")
        return {frozenset(r["metric"].items()): float(r["value"][1])
                for r in reply["data"]["result"]}

    def value(self, expr):
        """The value of a query that must return exactly one series, else None."""
        result = self.query(expr)
        return next(iter(result.values())) if len(result) == 1 else None


def worker_metrics(p, worker):
    code, body = harness.http_get(p.ports[worker], "/metrics")
    if code != 200:
        raise ValueError(f"{worker} /metrics answered {code}")
    return body.decode()


def sample(text, series):
    """The value of one exact series line of a /metrics text, or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split(" ")[1])
    return None


def run_pipeline(p, t):
    p.drop("US1", "input.csv", US1_DROP)
    p.drop("US2", "input.csv", US2_DROP)
    p.drop("US3", "input.csv", US3_DROP)
    p.drop("US4", "input.csv", SAMPLE_ORDERS.replace("A-", "D-"))
    with open(os.path.join(p.depot, "US4"), "w") as f:
        f.write("not a folder\n")
    code, body = harness.http_post(p.ports["daily-checker"], "/",
                                   json.dumps({"order_date": DATE}).encode(),
                                   headers={"Content-Type": "application/json"})
    t.check(code == 200, f"POST / to daily-checker answers 200 (got {code}: {body[:200]!r})")
    published = json.loads(body).get("published", []) if code == 200 else []
    t.check(sorted(e["client_id"] for e in published) == ["US1", "US2", "US3", "US4"],
            f"one order-date per client with a drop (got {len(published)})")
    return publish_undecodable_and_settle(p, handled=6, ready=2, failed=2)


def publish_undecodable_and_settle(p, handled, ready, failed):
    """Publishes one undecodable order-date, waits until file-transformer
    has handled `handled` events and status-checker consumed `ready`
    file-ready and `failed` file-failed; returns US1's and US2's /status."""
    c = p.client()
    try:
        c.publish("orders.order-date", b"\xff\x00\x13 not an event")
    finally:
        c.close()

    def settled():
        ft = worker_metrics(p, "file-transformer")
        sc = worker_metrics(p, "status-checker")
        return (sample(ft, "dx_processing_duration_seconds_count") == handled
                and sample(sc, 'dx_events_consumed_total{subject="orders.file-ready"}') == ready
                and sample(sc, 'dx_events_consumed_total{subject="orders.file-failed"}') == failed)
    harness.wait_until(settled, timeout=60, what="the pipeline to settle")
    return p.wait_runs(["US1", "US2"], DATE)


def check_promtool(p, t):
    for worker in WORKERS:
        text = worker_metrics(p, worker)
        res = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        t.check(res.returncode == 0 and not res.stdout.strip(),
                f"promtool check metrics accepts {worker}'s /metrics "
                f"(exit {res.returncode}: {res.stdout.decode()[:500]})")


def check_series(prom, t, status, started):
    for worker in WORKERS:
        t.check(prom.value(f'up{{job="{worker}"}}') == 1, f"up == 1 for job {worker}")
        t.check(prom.value(f'dx_build_info{{job="{worker}",worker="{worker}"}}') == 1,
                f"dx_build_info names {worker}")
    us1 = status["clients"]["US1"]["dates"][DATE]
    t.check(us1["rows_in"] == US1_ROWS, f"US1 run read {US1_ROWS} rows (got {us1['rows_in']})")
    expected = {
        'dx_rows_in_total{client_id="US1"}': US1_ROWS,
        'dx_rows_out_total{client_id="US1"}': us1["rows_out"],
        # by reason: US1's one rejected row has an impossible date
        'dx_rows_rejected_total{client_id="US1",reason="invalid_date"}': us1["rows_rejected"],
        'sum(dx_rows_rejected_total{client_id="US1"})': us1["rows_rejected"],
        'dx_rows_duplicate_total{client_id="US1"}': us1["rows_duplicate"],
        'dx_rows_in_total{client_id="US2"}': US2_ROWS,
        'dx_files_processed_total{client_id="US1"}': 1,
        'dx_files_processed_total{client_id="US2"}': 1,
        'dx_files_failed_total{client_id="US3"}': 1,
        'dx_files_failed_total{client_id="US4"}': 1,
        'dx_events_published_total{job="daily-checker",subject="orders.order-date"}': 4,
        'dx_events_published_total{job="file-transformer",subject="orders.file-ready"}': 2,
        'dx_events_published_total{job="file-transformer",subject="orders.file-failed"}': 2,
        # four order-date events, US4's redelivery and the undecodable message
        'dx_events_consumed_total{job="file-transformer",subject="orders.order-date"}': 6,
        # US4's first delivery, nak'd for a retry
        'dx_events_failed_total{job="file-transformer",subject="orders.order-date"}': 1,
        'sum(dx_events_failed_total)': 1,
        # the undecodable message and US4's last delivery
        'dx_events_terminated_total{job="file-transformer",subject="orders.order-date"}': 2,
        'dx_events_consumed_total{job="status-checker",subject="orders.file-ready"}': 2,
        'dx_events_consumed_total{job="status-checker",subject="orders.file-failed"}': 2,
        'dx_invalid_input_total{job="file-transformer",kind="undecodable"}': 1,
        'dx_invalid_input_total{job="file-transformer",kind="unusable_file"}': 1,
        'dx_processing_duration_seconds_count{job="file-transformer"}': 6,
        'dx_processing_duration_seconds_bucket{job="file-transformer",le="+Inf"}': 6,
        'dx_nats_reconnects_total{job="file-transformer"}': 0,
        'sum(dx_sftp_errors_total)': 0,
    }
    for expr, want in expected.items():
        got = prom.value(expr)
        t.check(got == want, f"{expr} == {want} (got {got})")
    t.check(us1["rows_out"] + us1["rows_rejected"] + us1["rows_duplicate"] == US1_ROWS
            and us1["rows_rejected"] >= 1 and us1["rows_duplicate"] >= 1,
            f"US1 has rejects and duplicates, and its counts add up ({us1})")
    # The counters are per client, and only the clients that ran have one.
    t.check(set(dict(k)["client_id"] for k in prom.query("dx_files_processed_total")) ==
            {"US1", "US2"}, "dx_files_processed_total has a series for US1 and US2 only")
    t.check(not prom.query('dx_last_success_timestamp_seconds{client_id=~"US3|US4"}'),
            "no last-success timestamp for the clients whose drop failed")
    for client in ("US1", "US2"):
        ts = prom.value(f'dx_last_success_timestamp_seconds{{client_id="{client}"}}')
        t.check(ts is not None and ts > 0, f"dx_last_success_timestamp_seconds for {client} > 0")
        # Same clock as this test's: set during this run, not some default.
        t.check(ts is not None and started - 60 <= ts <= time.time() + 60,
                f"{client}'s last success is the time of this run ({ts} vs {started})")
    t.check(prom.value('histogram_quantile(0.5, dx_processing_duration_seconds_bucket'
                       '{job="file-transformer"})') is not None,
            "histogram_quantile works on the duration histogram")
    # Label hygiene, checked on everything Prometheus stored.
    series = prom.query('{__name__=~"dx_.+"}')
    t.check(len(series) > 50, f"Prometheus stored the dx_ series ({len(series)})")
    bad = [dict(k) for k in series
           if set(dict(k)) - ALLOWED_LABELS
           or any(len(v) == 32 and all(ch in "0123456789abcdef" for ch in v) or ".csv" in v
                  for name, v in k if name != "__name__")]
    t.check(not bad, f"no series carries a file name, a trace id or an unknown label ({bad[:3]})")


def main():
    t = harness.TestRun("test_prometheus")
    p = harness.Pipeline("prometheus", extra_env={"MAX_DELIVER": MAX_DELIVER})
    prom = None
    started = time.time()
    try:
        p.start()
        p.start_worker("daily-checker", SCHEDULE="")
        prom = Prometheus(p.workdir, {w: p.ports[w] for w in WORKERS}).start()
        status = run_pipeline(p, t)
        check_promtool(p, t)
        settled_at = time.time()
        # Every job scraped at least once after the pipeline settled.
        harness.wait_until(
            lambda: all((prom.value(f'timestamp(up{{job="{w}"}})') or 0) > settled_at + 0.01
                        for w in WORKERS),
            timeout=30, what="a scrape of every job after the run")
        check_series(prom, t, status, started)
    except Exception as e:  # a crash of the test is a failure, with logs
        t.check(False, f"exception: {e!r}")
    finally:
        if prom is not None:
            prom.stop()
        if t.failed:
            p.dump_logs()
        p.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
