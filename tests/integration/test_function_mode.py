"""The OpenFaaS function contract, end to end on loopback (issue 5).

The workers run in function mode (SUBSCRIBE=0): they consume nothing from
JetStream and are driven over HTTP only.  This test plays the two OpenFaaS
connectors exactly as the connector SDK does:
- the cron-connector POSTs to daily-checker with an empty body and the
  headers X-Topic: cron-function, X-Connector: cron-connector;
- the nats-connector holds a core NATS subscription on each function's topic
  and POSTs every message to the function, body byte for byte as received,
  with X-Topic: <subject>, X-Connector: connector-sdk and no Content-Type (it
  does not forward NATS headers).
The chain from the cron invocation to status-checker's updated status must
complete, and the answers must follow the contract (200/400/503, JSON).
"""

import json
import os
import sys
import threading
import time

import harness
from harness import SAMPLE_ORDERS

TOPICS = {"orders.order-date": "file-transformer", "orders.file-ready": "status-checker",
          "orders.file-failed": "status-checker"}


class ConnectorDriver(threading.Thread):
    """A stand-in for the nats-connector: subscribe, then POST each message."""

    def __init__(self, pipeline):
        super().__init__(daemon=True)
        self.p = pipeline
        self.client = pipeline.client()
        for subject in TOPICS:
            self.client.subscribe(subject, "openfaas_nats_worker_group")
        self.answers = []
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                subject, _headers, body = self.client.next_msg(timeout=0.5)
            except (TimeoutError, OSError):
                continue
            function = TOPICS[subject]
            code, answer = harness.http_post(self.p.ports[function], "/", body, headers={
                "X-Topic": subject, "X-Connector": "connector-sdk",
                "User-Agent": "openfaas-connector-sdk"})
            self.answers.append((subject, function, code, answer))


def main():
    t = harness.TestRun("test_function_mode")
    p = harness.Pipeline("function", extra_env={"SUBSCRIBE": "0"})
    driver = None
    date = time.strftime("%Y-%m-%d", time.gmtime())
    try:
        p.drop("US1", "input.csv", SAMPLE_ORDERS)
        p.drop("US2", "input.csv", "order_id,order_date,quantity\n1,2026-11-24,2\n")  # unusable: no unit_price
        p.start_nats()
        for worker in ("status-checker", "file-transformer", "daily-checker"):
            p.start_worker(worker)
        driver = ConnectorDriver(p)
        driver.start()

        # Health and readiness as the platform probes them.
        for worker in ("status-checker", "file-transformer", "daily-checker"):
            code, _ = harness.http_get(p.ports[worker], "/_/health")
            t.check(code == 200, f"{worker} /_/health 200")

        # The cron-connector's invocation: empty body means today.
        code, body = harness.http_post(p.ports["daily-checker"], "/", b"", headers={
            "X-Topic": "cron-function", "X-Connector": "cron-connector"})
        t.check(code == 200, f"cron invocation answered 200 (got {code}: {body[:200]!r})")
        result = json.loads(body)
        published = result.get("published", [])
        t.check(sorted(e["client_id"] for e in published) == ["US1", "US2"],
                "daily-checker published one order-date per client with a drop")
        t.check(all(e["order_date"] == date and e["triggered_by"] == "schedule"
                    for e in published), "for today, triggered by the schedule")

        st = p.wait_runs(["US1"], date, timeout=60)
        harness.wait_until(lambda: any(f["client_id"] == "US2" for f in p.status()["failures"]),
                           what="US2's failure in the status")
        st = p.status()
        run = st["clients"]["US1"]["dates"][date]
        t.check(run["rows_in"] == 3 and run["trace_id"] == published[0]["trace_id"],
                "US1's run reached status-checker with the cron run's trace id")
        failure = [f for f in st["failures"] if f["client_id"] == "US2"][0]
        t.check(failure["permanent"] and "unit_price" in failure["reason"],
                f"US2's unusable file is a permanent failure naming the column ({failure})")
        ft = [(c, a) for s, f, c, a in driver.answers if f == "file-transformer"]
        t.check(len(ft) == 2 and all(c == 200 for c, _ in ft),
                f"file-transformer answered the connector 200 twice ({[c for c, _ in ft]})")
        t.check(any(b'"files"' in a and b'"rows_in":3' in a for _, a in ft),
                "its answer is the JSON counts and outputs")
        sc = [(c, a) for s, f, c, a in driver.answers if s == "orders.file-ready"]
        t.check(sc and sc[0][0] == 200 and b'"clients"' in sc[0][1],
                "status-checker answered with the updated status")

        # Nothing was consumed through JetStream: no durable consumer exists.
        info = p.client().consumer_info("file-transformer")
        t.check("error" in info, "no durable consumer in function mode")

        # The contract's errors.
        code, body = harness.http_post(p.ports["file-transformer"], "/", b"\xff\x00garbage")
        t.check(code == 400 and b'"error"' in body, f"undecodable body: 400 JSON (got {code})")
        code, body = harness.http_post(p.ports["file-transformer"], "/",
                                       b'{"order_date":"2026-02-30"}')
        t.check(code == 400 and b"not a YYYY-MM-DD date" in body, "invalid date: 400")
        code, body = harness.http_post(p.ports["file-transformer"], "/",
                                       b'{"order_date":"2026-11-24","client_id":"../US1"}')
        t.check(code == 400, f"hostile client id: 400 (got {code})")
        code, body = harness.http_post(p.ports["status-checker"], "/", b"x" * 70000)
        t.check(code == 413, f"oversized body: 413 (got {code})")
        code, body = harness.http_post(p.ports["daily-checker"], "/", b'{"order_date":7}')
        t.check(code == 400, f"daily-checker bad body: 400 (got {code})")
        # A W3C traceparent on an HTTP invocation becomes the trace id.
        p.drop("US3", "input.csv", SAMPLE_ORDERS)
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        code, body = harness.http_post(
            p.ports["file-transformer"], "/",
            json.dumps({"order_date": date, "client_id": "US3"}).encode(),
            headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01",
                     "Content-Type": "application/json"})
        t.check(code == 200 and json.loads(body)["trace_id"] == trace,
                "traceparent gives the trace id")
        for worker in ("status-checker", "file-transformer", "daily-checker"):
            t.check(p.workers[worker].poll() is None, f"{worker} still running")

        # Storage unreachable: 503 so that the caller can retry, and the
        # readiness probe says so.
        os.rename(p.depot, p.depot + ".away")
        p.drop("US4", "input.csv", SAMPLE_ORDERS)
        code, body = harness.http_post(p.ports["file-transformer"], "/", json.dumps(
            {"order_date": date, "client_id": "US4"}).encode())
        t.check(code == 503 and b'"failures"' in body, f"storage down: 503 (got {code})")
        code, _ = harness.http_get(p.ports["file-transformer"], "/_/ready")
        t.check(code == 503, "not ready while the depot is unreachable")
        t.check(os.path.exists(os.path.join(p.inbox, "US4", "input.csv")),
                "the drop stays in the inbox")
        os.rename(p.depot + ".away", p.depot)
    except Exception as e:  # noqa: BLE001
        t.check(False, f"exception: {e!r}")
    finally:
        if driver is not None:
            driver.stop = True
        if t.failed:
            p.dump_logs()
        p.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
