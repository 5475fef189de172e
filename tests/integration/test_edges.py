"""Edges of the running workers (issue 11, items 3, 5, 6, 7 and two of 9).

1. Slowloris: 500 connections that send their headers one byte a second,
   from other loopback addresses (127.0.1.x: Linux routes all of 127/8 to
   lo), held against status-checker.  /_/health, /_/ready, /metrics, /status
   and POST / from a normal client (127.0.0.1) each answer within 1 s; one
   address is held to HTTP_MAX_PER_IP connections; the slow connections are
   closed once HTTP_READ_DEADLINE_S has passed, and counted.  A POST / that
   announces a body over MAX_EVENT_BYTES is answered 413 before it is sent.
2. Bad settings: TZ, NATS_URL, NATS_CREDS_FILE, NATS_TLS_*, HTTP_ADDR are
   refused at start with one line naming the variable and exit code 2, in
   service mode and with --once; a good start logs one "settings" line.
3. NATS credentials: a nats-server with user/password authorisation; the
   password never appears in any log, error, /status, the page or /metrics.
4. NATS over TLS with a private CA made by openssl here: the right CA (and a
   client certificate, mutual TLS) connects, a wrong CA is refused with a
   clear line.
5. A depot that does not exist: status-checker says it cannot be listed and
   why; a 60,000-deep JSON body is refused as nested too deeply.
"""

import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time

import harness
from harness import SAMPLE_ORDERS

DATE = "2026-11-24"
SLOW_CONNECTIONS = 500
PER_ADDRESS = 20  # below HTTP_MAX_PER_IP (32): every slow connection is accepted
PER_IP_CAP = 32  # HTTP_MAX_PER_IP in workers/common/http.h
READ_DEADLINE_S = 10  # HTTP_READ_DEADLINE_S
PASSWORD = "TopSecret9"


def figure(text):
    print(f"figure: {text}", flush=True)


def metric(port, name, label):
    code, body = harness.http_get(port, "/metrics")
    m = re.search(rf'^{name}{{kind="{label}"}} ([0-9.e+]+)$'.encode(), body, re.M)
    return float(m.group(1)) if code == 200 and m else -1


def is_open(sock):
    """True while the server has not closed sock."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


class Slowloris:
    """Connections from source addresses 127.0.1.x that send a request's
    headers one byte a second and never finish them."""

    def __init__(self, port, count, per_address, first_address=1):
        self.socks = []
        self.stop = threading.Event()
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((f"127.0.1.{first_address + i // per_address}", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
            self.socks.append(s)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        while not self.stop.wait(1.0):
            for s in self.socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass

    def open_count(self):
        return sum(1 for s in self.socks if is_open(s))

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def timed(fn):
    start = time.monotonic()
    try:
        result = fn()
    except OSError as e:
        result = (0, repr(e).encode())
    return time.monotonic() - start, result


def file_ready(client, n):
    return json.dumps({"event_id": f"edge-{client}-{n}", "client_id": client, "order_date": DATE,
                       "output": f"{client}/{DATE}/input.csv", "rows_in": 1, "rows_out": 1,
                       "rows_rejected": 0}).encode()


def test_slowloris(p, t):
    port = p.ports["status-checker"]
    attack = Slowloris(port, SLOW_CONNECTIONS, PER_ADDRESS)
    try:
        # Measured once the worker holds them all: one thread per connection.
        pid = p.workers["status-checker"].pid
        harness.wait_until(lambda: threads(pid) >= SLOW_CONNECTIONS, timeout=30,
                           what=f"status-checker holding {SLOW_CONNECTIONS} connections")
        held = attack.open_count()
        t.check(held >= SLOW_CONNECTIONS - 5,
                f"the {SLOW_CONNECTIONS} slow connections are held open ({held})")
        probes = {
            "/_/health": lambda: harness.http_get(port, "/_/health", timeout=3),
            "/_/ready": lambda: harness.http_get(port, "/_/ready", timeout=3),
            "/metrics": lambda: harness.http_get(port, "/metrics", timeout=3),
            "/status": lambda: harness.http_get(port, "/status", timeout=3),
        }
        worst = {}
        for round_no in range(3):
            for path, fn in probes.items():
                took, (code, _body) = timed(fn)
                worst[path] = max(worst.get(path, 0), took)
                t.check(code == 200 and took < 1.0,
                        f"GET {path} under attack: {code} in {took:.3f} s (limit 1 s)")
            took, (code, body) = timed(lambda: harness.http_post(
                port, "/", file_ready("US1", round_no),
                headers={"Content-Type": "application/json",
                         "X-Topic": "orders.file-ready"}, timeout=3))
            worst["POST /"] = max(worst.get("POST /", 0), took)
            t.check(code == 200 and took < 1.0,
                    f"POST / under attack: {code} in {took:.3f} s (limit 1 s): {body[:200]!r}")
        figure(f"with {attack.open_count()} slowloris connections held: worst of 3 rounds " +
               ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in worst.items()))
        # One address gets HTTP_MAX_PER_IP connections; the next are closed.
        crowd = Slowloris(port, PER_IP_CAP + 8, PER_IP_CAP + 8, first_address=200)
        try:
            time.sleep(1.0)
            kept = crowd.open_count()
            t.check(kept == PER_IP_CAP,
                    f"one client address holds at most {PER_IP_CAP} connections ({kept} open)")
            took, (code, _body) = timed(lambda: harness.http_get(port, "/_/health", timeout=3))
            t.check(code == 200 and took < 1.0,
                    f"health still answers with one address at its cap ({took:.3f} s)")
        finally:
            crowd.close()
        # The read deadline closes what the idle timeout never would.
        deadline = time.time() + READ_DEADLINE_S + 10
        while time.time() < deadline and attack.open_count() > 0:
            time.sleep(0.5)
        left = attack.open_count()
        t.check(left == 0, f"slow connections closed after the {READ_DEADLINE_S} s read deadline "
                f"({left} still open)")
        counted = metric(port, "dx_invalid_input_total", "slow_request")
        t.check(counted >= SLOW_CONNECTIONS,
                f"closed slow requests counted in dx_invalid_input_total{{kind=\"slow_request\"}} "
                f"({counted})")
    finally:
        attack.close()


def test_announced_too_large(p, t):
    port = p.ports["status-checker"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000000\r\n\r\n{\"client_id\":")
        s.settimeout(2)
        try:
            answer = s.recv(4096)
        except OSError as e:
            answer = repr(e).encode()
        took = time.monotonic() - start
    t.check(answer.startswith(b"HTTP/1.1 413"),
            f"Content-Length over MAX_EVENT_BYTES: 413 before the body ({answer[:60]!r})")
    t.check(took < 1.0, f"the 413 comes at once ({took:.3f} s)")
    figure(f"POST / announcing 1 GB answered 413 in {took * 1000:.0f} ms")


def refused(command, env, variable, what):
    try:
        res = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=5)
    except subprocess.TimeoutExpired:
        return False, f"{what}: still running after 5 s"
    lines = [line for line in res.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    ok = res.returncode == 2 and len(lines) == 1 and variable in lines[0]
    return ok, f"{what}: exit {res.returncode}, output {lines[:3]}"


def test_bad_settings(p, t, bad_pem):
    dead_nats = f"nats://127.0.0.1:{harness.free_port()}"  # nothing listens: no resolver either
    cases = [
        ("TZ", "Europe/Pari"),
        ("TZ", "Paris"),
        ("NATS_URL", "garbage"),
        ("NATS_URL", "http://127.0.0.1:4222"),
        ("NATS_URL", f"{dead_nats},nats://127.0.0.1:99999"),
        ("NATS_CREDS_FILE", os.path.join(p.workdir, "missing.creds")),
        ("NATS_TLS_CA_FILE", os.path.join(p.workdir, "missing-ca.pem")),
        ("NATS_TLS_CA_FILE", bad_pem),
        ("HTTP_ADDR", "localhost"),
        ("HTTP_ADDR", "300.1.2.3"),
    ]
    modes = [
        ("daily-checker --once", ["daily-checker", ["--once"]]),
        ("daily-checker service", ["daily-checker", []]),
        ("file-transformer", ["file-transformer", []]),
        ("status-checker", ["status-checker", []]),
    ]
    for variable, value in cases:
        for mode, (worker, args) in modes:
            env = p.env(worker, NATS_URL=dead_nats, PORT=harness.free_port())
            env[variable] = value
            ok, detail = refused(harness.worker_command(worker, args), env, variable,
                                 f"{variable}={value!r}, {mode}")
            t.check(ok, f"refused at start, one line naming the variable, exit 2 ({detail})")


def test_settings_line(p, t):
    port = harness.free_port()
    nats_url = f"nats://alice:{PASSWORD}@127.0.0.1:{p.nats.port}"
    proc = p.start_worker("daily-checker", wait_ready=False, log_name="daily-checker-settings",
                          PORT=port, TZ="Europe/Paris", SCHEDULE="30 7 * * *", NATS_URL=nats_url)
    try:
        rec = harness.wait_until(lambda: next((r for r in harness.log_records(proc)
                                               if r["msg"] == "settings"), None),
                                 timeout=10, what="the settings line")
        t.check(rec["tz"] == "Europe/Paris", f"settings: tz ({rec})")
        t.check(rec["nats_servers"] == f"nats://alice:***@127.0.0.1:{p.nats.port}",
                f"settings: NATS servers without the password ({rec['nats_servers']})")
        t.check(rec["inbox"] == p.inbox_url and rec["schedule"] == "30 7 * * *",
                f"settings: inbox and schedule ({rec})")
        t.check(re.fullmatch(r"\d{4}-\d\d-\d\dT07:30:00\+0100 CET", rec["next_run"] or "")
                is not None, f"settings: next run in local time ({rec['next_run']})")
    finally:
        harness.stop_process(p.workers.pop("daily-checker-settings"))


def test_nats_credentials(t):
    wrong = "WrongPass7"
    with harness.pipeline_run(t, "edges-auth") as p:
        p.nats.user, p.nats.password = "alice", PASSWORD
        url = p.nats.url
        p.start()
        # daily-checker --once with a wrong password gives up after 30 s:
        # started now, read at the end.
        once_log = os.path.join(p.workdir, "daily-checker-wrong-password.log")
        once = harness.start_process(harness.worker_command("daily-checker", ["--once"]),
                                     once_log, env=p.env("daily-checker",
                                                         NATS_URL=url.replace(PASSWORD, wrong)))
        p.drop("US1", "input.csv", SAMPLE_ORDERS)
        code, out = p.run_checker("--once", "--date", DATE)
        t.check(code == 0, f"daily-checker --once with user/password in NATS_URL (exit {code})")
        p.wait_runs(["US1"], DATE)
        # A wrong password: the failure is logged, with the user and not the password.
        ft = p.start_worker("file-transformer", wait_ready=False, log_name="ft-wrong-password",
                            NATS_URL=url.replace(PASSWORD, wrong), PORT=harness.free_port())
        line = harness.wait_until(lambda: next((r["msg"] for r in harness.log_records(ft)
                                                if "cannot connect to NATS" in r["msg"]), None),
                                  timeout=15, what="the refused connection's line")
        t.check(f"nats://alice:***@127.0.0.1:{p.nats.port}" in line and
                "Authorization" in line, f"wrong password: a clear line, user shown ({line})")
        once.wait(timeout=90)
        once_out = "\n".join(harness.read_log_lines(once_log))
        harness.stop_process(once)
        t.check(once.returncode == 1 and "cannot reach NATS at nats://alice:***@" in once_out,
                f"daily-checker --once, wrong password: exit 1, user shown ({once_out[-300:]})")
        found = p.secret_leaks(PASSWORD) + p.secret_leaks(wrong)
        t.check(found == [], f"the NATS password never appears ({found})")
        t.check(PASSWORD not in out, "nor in daily-checker's output")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(folder):
    """Two CAs; a server certificate for 127.0.0.1 and a client certificate,
    both signed by ca; other-ca signs nothing of ours."""
    os.makedirs(folder, exist_ok=True)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=dx test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                cwd=folder)
    with open(os.path.join(folder, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(folder, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=dx test {name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
                cwd=folder)
    return {name: os.path.join(folder, name) for name in (
        "ca.pem", "other-ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_tls(t):
    with harness.pipeline_run(t, "edges-tls") as p:
        pki = make_pki(os.path.join(p.workdir, "pki"))
        conf = os.path.join(p.workdir, "nats-tls.conf")
        with open(conf, "w") as f:
            f.write("tls {\n  cert_file: \"%s\"\n  key_file: \"%s\"\n  ca_file: \"%s\"\n"
                    "  verify: true\n  timeout: 5\n}\n"
                    % (pki["server.pem"], pki["server.key"], pki["ca.pem"]))
        p.nats.extra_args = ["-c", conf]
        p.start_nats()
        tls_url = f"tls://127.0.0.1:{p.nats.port}"
        mtls = dict(NATS_URL=tls_url, NATS_TLS_CA_FILE=pki["ca.pem"],
                    NATS_TLS_CERT_FILE=pki["client.pem"], NATS_TLS_KEY_FILE=pki["client.key"])
        p.start_worker("status-checker", **mtls)
        t.check(True, "the private CA and a client certificate: status-checker connects, ready")
        p.start_worker("file-transformer", **mtls)
        p.drop("US1", "input.csv", SAMPLE_ORDERS)
        code, out = p.run_checker("--once", "--date", DATE, **mtls)
        t.check(code == 0, f"daily-checker --once over mutual TLS (exit {code}: {out[-300:]})")
        st = p.wait_runs(["US1"], DATE)
        t.check(st["clients"]["US1"]["dates"][DATE]["rows_in"] == 3, "the chain runs over TLS")
        cases = (
            ("wrong CA", dict(mtls, NATS_TLS_CA_FILE=pki["other-ca.pem"]),
             "unable to get local issuer certificate"),
            ("no client certificate", dict(NATS_URL=tls_url, NATS_TLS_CA_FILE=pki["ca.pem"]), ""),
        )
        for what, env, reason in cases:
            name = "ft-" + what.replace(" ", "-")
            port = harness.free_port()
            ft = p.start_worker("file-transformer", wait_ready=False, log_name=name, PORT=port,
                                **env)
            line = harness.wait_until(lambda: next((r["msg"] for r in harness.log_records(ft)
                                                    if "cannot connect to NATS" in r["msg"]),
                                                   None), timeout=15, what=f"{what}: refused")
            t.check(reason in line and tls_url in line,
                    f"{what}: refused with a clear line ({line})")
            t.check(harness.http_get(port, "/_/ready")[0] == 503, f"{what}: not ready")
            harness.stop_process(p.workers.pop(name))


def test_depot_missing(t):
    with harness.pipeline_run(t, "edges-depot") as p:
        missing = os.path.join(p.workdir, "no-such-depot")
        p.start_nats()
        sc = p.start_worker("status-checker", wait_ready=False, DEPOT_URL=f"file://{missing}")
        rec = harness.wait_until(lambda: next((r for r in harness.log_records(sc)
                                               if "depot" in r["msg"]), None),
                                 timeout=20, what="status-checker's depot line")
        t.check("cannot list the depot" in rec["msg"] and "-1" not in rec["msg"] and
                ("No such file" in rec["msg"] or "not found" in rec["msg"].lower()),
                f"a missing depot: says it cannot be listed, and why ({rec['msg']})")
        t.check(not any("-1 files" in r["msg"] for r in harness.log_records(sc)),
                "never '-1 files in the depot'")


def test_nested_too_deep(p, t):
    body = b"[" * 60000 + b"]" * 60000
    code, answer = harness.http_post(p.ports["status-checker"], "/", body,
                                     headers={"Content-Type": "application/json"}, timeout=10)
    t.check(code == 400 and b"nested too deeply" in answer,
            f"a 60,000-deep JSON body: refused as nested too deeply ({code}, {answer[:120]!r})")


def section(t, fn, *args):
    """Runs one part; an exception is a failed check, and the next part runs."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        t.check(False, f"{fn.__name__}: exception {e!r}")


def main():
    t = harness.TestRun("test_edges")
    with harness.pipeline_run(t, "edges", extra_env={"MAX_EVENT_BYTES": "262144"}) as p:
        with open(os.path.join(p.workdir, "bad.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        p.start_nats()
        p.start_worker("status-checker")
        section(t, test_announced_too_large, p, t)
        section(t, test_nested_too_deep, p, t)
        section(t, test_slowloris, p, t)
        section(t, test_bad_settings, p, t, os.path.join(p.workdir, "bad.pem"))
        section(t, test_settings_line, p, t)
    test_nats_credentials(t)
    test_tls(t)
    test_depot_missing(t)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
