"""Notifications (issue 14): status-checker's notifier against real receivers.

Real nats-server (JetStream) and the real status-checker; the receivers are
HTTP servers of this test on 127.0.0.1: one that fails its first attempts of
each event with 500 (the global webhook), one that hangs past
NOTIFY_TIMEOUT_MS on its first attempt, an https one with a certificate made
by openssl here, and one that answers 404 (a wrong URL: given up, never
retried).  ClientState events are published by the test itself, as
status-checker's day states would be.

Checks: every notification arrives, each exactly once at every target even
after status-checker is killed and restarted (in function mode, SUBSCRIBE=0,
the second time: the notifier pulls for itself); the global and the
per-client target both get it; mailto is counted as not delivered; the
metrics; the webhook URLs appear in no log, /status, page or /metrics; bad
settings exit 2 with one line naming the variable.
"""

import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import faultlib  # noqa: E402
import harness  # noqa: E402

TIMEOUT_MS = 1000
SECRET = "T0KEN-s3cr3t-9f1e"  # in every webhook URL's path


class Receiver:
    """An HTTP(S) receiver on a free loopback port.  mode(attempt) says what
    to do with the attempt-th POST of an event: an HTTP status, or "hang"."""

    def __init__(self, name, mode, certfile=None):
        self.name = name
        self.mode = mode
        self.lock = threading.Lock()
        self.attempts = {}  # event_id -> attempts seen
        self.accepted = []  # bodies answered 2xx
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ok_type = self.headers["Content-Type"] == "application/json"
                with receiver.lock:
                    n = receiver.attempts.get(body["event_id"], 0) + 1
                    receiver.attempts[body["event_id"]] = n
                what = receiver.mode(n)
                if what == "hang":
                    # Past the notifier's timeout: it has given up on this
                    # attempt, so it does not count as delivered.
                    time.sleep(TIMEOUT_MS / 1000 * 3)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if what // 100 == 2 and ok_type and self.path.endswith(SECRET):
                    with receiver.lock:
                        receiver.accepted.append(body)
                self.send_response(what)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if certfile else "http"
        self.port = self.server.server_address[1]
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/hooks/{SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self):
        with self.lock:
            return [b["event_id"] for b in self.accepted]

    # status-checker announces days of its own (the test's clients have
    # profiles, so their past days turn missing): the test's events are
    # told apart by their ids, the counts below cover both.
    def mine(self):
        return [i for i in self.ids() if i.startswith(MINE)]

    def my_attempts(self):
        with self.lock:
            return {i: n for i, n in self.attempts.items() if i.startswith(MINE)}

    def clients(self):
        with self.lock:
            return [b["client_id"] for b in self.accepted]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def make_cert(workdir, name="receiver"):
    """A self-signed certificate for 127.0.0.1 (key and cert in one file)."""
    path = os.path.join(workdir, f"{name}.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", path + ".key", "-out", path + ".crt"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(path, "w") as out:
        for part in (".key", ".crt"):
            with open(path + part) as f:
                out.write(f.read())
    return path, path + ".crt"


MINE = "client-state-"  # the prefix of the events the test publishes


def client_state(client, state, n, reason="", previous="waiting"):
    return {"eventId": f"{MINE}{client}-{n}", "traceId": f"{n:032x}",
            "clientId": client, "orderDate": "2026-12-01", "state": state,
            "previous": previous, "reason": reason, "at": "2026-12-01T05:31:00Z",
            "causedBy": ""}


def publish(p, ev):
    c = p.client()
    try:
        c.publish("orders.client-state", json.dumps(ev),
                  headers={"Content-Type": "application/json", "Nats-Msg-Id": ev["eventId"]})
    finally:
        c.close()


def metric(p, name, labels=""):
    code, body = harness.http_get(p.ports["status-checker"], "/metrics")
    for line in body.decode().splitlines():
        m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name and (m.group(2) or "") == labels:
            return float(m.group(3))
    return None


def wait_log(p, what, timeout=30):
    path = os.path.join(p.workdir, "status-checker.log")
    harness.wait_until(lambda: what in open(path, errors="replace").read(), timeout=timeout,
                       what=f"'{what}' in status-checker.log")


def check_bad_settings(t, p, urlfile):
    def run(**env):
        res = subprocess.run(harness.worker_command("status-checker"),
                             env=p.env("status-checker", **env), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        return res.returncode, res.stdout.decode(errors="replace").strip()

    bad = os.path.join(p.workdir, "bad-url")
    with open(bad, "w") as f:
        f.write(f"ftp://127.0.0.1/{SECRET}\n")
    code, out = run(NOTIFY_WEBHOOK_URL_FILE=bad)
    t.check(code == 2 and "NOTIFY_WEBHOOK_URL_FILE" in out and len(out.splitlines()) == 1
            and SECRET not in out, f"a URL that is not http(s) exits 2 naming it: {code} {out!r}")
    code, out = run(NOTIFY_WEBHOOK_URL_FILE=os.path.join(p.workdir, "absent"))
    t.check(code == 2 and "NOTIFY_WEBHOOK_URL_FILE" in out,
            f"an unreadable URL file exits 2 naming it: {code} {out!r}")
    code, out = run(NOTIFY_WEBHOOK_URL_FILE=urlfile, NOTIFY_WEBHOOKS_DIR=bad)
    t.check(code == 2 and "NOTIFY_WEBHOOKS_DIR" in out,
            f"a webhooks folder that is a file exits 2 naming it: {code} {out!r}")
    code, out = run(NOTIFY_WEBHOOK_URL_FILE=urlfile, NOTIFY_TIMEOUT_MS="0")
    t.check(code == 2 and "NOTIFY_TIMEOUT_MS" in out, f"NOTIFY_TIMEOUT_MS=0 exits 2: {out!r}")
    code, out = run(NOTIFY_WEBHOOK_URL_FILE=urlfile, STATUS_PUBLIC_URL="status.example")
    t.check(code == 2 and "STATUS_PUBLIC_URL" in out, f"STATUS_PUBLIC_URL checked: {out!r}")


def main():
    t = harness.TestRun("test_notify")
    receivers = []
    with harness.pipeline_run(t, "notify") as p:
        pem, crt = make_cert(p.workdir)
        # The global webhook fails the first two attempts of every event.
        glob = Receiver("global", lambda n: 500 if n <= 2 else 200)
        team = Receiver("team", lambda n: "hang" if n == 1 else 200)
        secure = Receiver("secure", lambda n: 200, certfile=pem)
        wrong = Receiver("wrong", lambda n: 404)
        # A certificate NOTIFY_CA_FILE did not sign: never delivered.
        untrusted = Receiver("untrusted", lambda n: 200,
                             certfile=make_cert(p.workdir, "untrusted")[0])
        receivers += [glob, team, secure, wrong, untrusted]
        urlfile = os.path.join(p.workdir, "global-url")
        with open(urlfile, "w") as f:
            f.write(glob.url + "\n")
        hooks = os.path.join(p.workdir, "webhooks")
        os.makedirs(hooks)
        for r in (team, secure, wrong, untrusted):
            with open(os.path.join(hooks, r.name), "w") as f:
                f.write(r.url + "\n")
        env = {"NOTIFY_WEBHOOK_URL_FILE": urlfile, "NOTIFY_WEBHOOKS_DIR": hooks, "ACK_WAIT": 5,
               "NOTIFY_CA_FILE": crt, "NOTIFY_TIMEOUT_MS": TIMEOUT_MS,
               "STATUS_PUBLIC_URL": "https://status.example.test/"}
        p.start_nats()
        check_bad_settings(t, p, urlfile)
        p.start_worker("status-checker", **env)
        wait_log(p, "notifier consuming")
        c = p.client()
        for client, target in (("US1", "webhook:team"), ("US2", "webhook:secure"),
                               ("US3", "webhook:wrong"), ("US4", "mailto:ops@example.com")):
            c.kv_put("clients", client, json.dumps({"notify": target}))
        c.close()

        events = [client_state("US1", "late", 1, "no drop by 06:30 (+01:00)"),
                  client_state("US2", "failed", 2, "header: missing column order_id",
                               previous="requested"),
                  client_state("US3", "missing", 3, "no drop on 2026-12-01"),
                  client_state("US4", "late", 4, "no drop by 07:00 (+01:00)")]
        for ev in events:
            publish(p, ev)
        ids = [ev["eventId"] for ev in events]
        harness.wait_until(lambda: sorted(glob.mine()) == sorted(ids), timeout=60,
                           what="every event at the global webhook")
        harness.wait_until(lambda: team.mine() == ids[:1] and secure.mine() == ids[1:2],
                           timeout=60, what="the clients' own webhooks")
        t.check(glob.my_attempts() == {i: 3 for i in ids},
                f"the global webhook got 2 failures then the delivery: {glob.attempts}")
        t.check(team.my_attempts() == {ids[0]: 2},
                f"the hanging receiver was retried after the timeout: {team.attempts}")
        first = next(b for b in glob.accepted if b["event_id"] == ids[0])
        t.check(first["text"] == "US1 late for 2026-12-01: no drop by 06:30 (+01:00)",
                f"the text line: {first['text']!r}")
        t.check(first["client_id"] == "US1" and first["state"] == "late"
                and first["previous"] == "waiting" and first["order_date"] == "2026-12-01"
                and first["trace_id"] == f"{1:032x}"
                and first["reason"] == "no drop by 06:30 (+01:00)",
                f"the structured fields: {first}")
        t.check(first["links"] == {"page": "https://status.example.test/",
                                   "status": "https://status.example.test/status"},
                f"the links: {first['links']}")
        harness.wait_until(lambda: metric(p, "dx_notifications_pending") == 0, timeout=60,
                           what="dx_notifications_pending back to 0")
        # Every event of US4 (the test's and status-checker's own) reached
        # global, and each one counted its mailto target as not delivered.
        t.check(metric(p, "dx_notifications_failed_total", '{target="mailto"}')
                == glob.clients().count("US4") >= 1,
                f"mailto counted as not delivered once per event of US4: {glob.clients()}")
        t.check(wrong.my_attempts() == {ids[2]: 1} and set(wrong.attempts.values()) == {1},
                f"a 404 is given up at once: {wrong.attempts}")
        t.check(metric(p, "dx_notifications_sent_total", '{target="global"}') == len(glob.ids()),
                f"one sent to global per event: {len(glob.ids())}")
        t.check(metric(p, "dx_notifications_failed_total", '{target="global"}')
                == 2 * len(glob.attempts), "2 failed attempts at global per event")
        t.check(metric(p, "dx_notifications_sent_total", '{target="team"}') == len(team.ids()),
                "team's deliveries counted")
        t.check(metric(p, "dx_notifications_sent_total", '{target="secure"}')
                == len(secure.ids()) >= 1, "secure's deliveries (https) counted")
        t.check(metric(p, "dx_notifications_failed_total", '{target="wrong"}')
                == len(wrong.attempts), "each 404 counted once")
        t.check(p.secret_leaks(SECRET) == [], f"no webhook URL shown: {p.secret_leaks(SECRET)}")

        # Killed and restarted (in function mode): nothing arrives twice and
        # a new event, caught mid-retry by the kill, still arrives once.
        fifth = client_state("US1", "resolved", 5, previous="failed")
        publish(p, fifth)
        harness.wait_until(lambda: glob.attempts.get(fifth["eventId"], 0) >= 1, timeout=30,
                           what="the fifth event attempted")
        harness.stop_process(p.workers.pop("status-checker"), sig=signal.SIGKILL)
        p.start_worker("status-checker", SUBSCRIBE="0", **env)
        harness.wait_until(lambda: fifth["eventId"] in glob.mine()
                           and fifth["eventId"] in team.mine(), timeout=60,
                           what="the fifth event after the restart")
        time.sleep(3)  # room for any wrong redelivery to show up
        for r in (glob, team, secure):
            t.check(len(r.ids()) == len(set(r.ids())), f"{r.name} got nothing twice: {r.ids()}")
        t.check(sorted(glob.mine()) == sorted(ids + [fifth["eventId"]]),
                f"global got the five events: {glob.ids()}")
        t.check(wrong.my_attempts() == {ids[2]: 1} and set(wrong.attempts.values()) == {1},
                f"the 404 never retried: {wrong.attempts}")
        t.check(p.secret_leaks(SECRET) == [],
                f"no webhook URL shown after the restart: {p.secret_leaks(SECRET)}")
        # Every log line about a notification names its target by label.
        recs = harness.log_records(p.workers["status-checker"])
        targets = {r.get("target") for r in recs if "target" in r}
        t.check(targets <= {"global", "team", "secure", "wrong", "mailto"}, f"targets: {targets}")

        # An https receiver whose certificate is not trusted gets nothing.
        c = p.client()
        c.kv_put("clients", "US5", json.dumps({"notify": "webhook:untrusted"}))
        c.close()
        publish(p, client_state("US5", "late", 6, "no drop by 06:30 (+01:00)"))
        harness.wait_until(lambda: any(
            r.get("target") == "untrusted" and "certificate not accepted" in r.get("error", "")
            for r in harness.log_records(p.workers["status-checker"])), timeout=30,
            what="the untrusted certificate refused")
        t.check(untrusted.ids() == [] and untrusted.attempts == {},
                f"nothing POSTed to an untrusted receiver: {untrusted.attempts}")
        t.check(p.secret_leaks(SECRET) == [], "no webhook URL shown after a TLS failure")
        # SIGTERM with a target still being retried: the notifier's threads
        # stop and the process exits cleanly (no sanitizer report).
        code = harness.stop_process(p.workers.pop("status-checker"))
        t.check(code == 0, f"status-checker stopped cleanly: exit {code}")
        reports = faultlib.sanitizer_reports(p.workdir)
        t.check(reports == [], f"no sanitizer report: {reports[:5]}")
    for r in receivers:
        r.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
