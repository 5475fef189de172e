"""Test harness: real servers and the real worker binaries on loopback.

Everything started here is registered and stopped at exit, even when a test
fails (try/finally in the tests, atexit as a last resort).  Python standard
library only.  The NATS client below is a plain protocol client, written for
the tests, so that a manual trigger does not go through the workers' own code.
"""

import atexit
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD_DIR = os.environ.get("DX_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE_DIR = os.environ.get("DX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
NATS_SERVER = os.environ.get("NATS_SERVER_BIN", "nats-server")

_processes = []


def _stop_all():
    for proc in list(_processes):
        stop_process(proc, sig=signal.SIGKILL)


atexit.register(_stop_all)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def start_process(args, log_path, env=None, cwd=None):
    """Starts args in its own process group, stdout+stderr to log_path."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)
    proc.log_path = log_path
    proc.log_file = log
    _processes.append(proc)
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=15.0):
    """Stops proc's process group; returns its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc in _processes:
        _processes.remove(proc)
    proc.log_file.close()
    return proc.returncode


# AddressSanitizer's shadow memory and quarantine multiply a process's RSS:
# memory bounds are proven on the normal build and only kept loose (still a
# bound) on the sanitizer build.
RSS_LIMIT_ASAN_KB = 512 * 1024


def built_with_asan(path):
    """True when the executable at path links AddressSanitizer's runtime."""
    res = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return b"libasan" in res.stdout


def rss_limit_kb(path, limit_kb):
    """limit_kb, or the looser sanitizer bound when path is an ASan build."""
    return RSS_LIMIT_ASAN_KB if built_with_asan(path) else limit_kb


def worker_command(name, args=(), wrapper=()):
    """The command line that runs worker name: the binary, prefixed by
    DX_WORKER_WRAPPER when set (e.g. valgrind, for the memory-checked run),
    or else by wrapper (e.g. strace, for one worker of a test)."""
    import shlex
    prefix = shlex.split(os.environ.get("DX_WORKER_WRAPPER", "")) or list(wrapper)
    return prefix + [binary(name)] + list(args)


def binary(name):
    path = os.path.join(BUILD_DIR, "workers", name, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not built")
    return path


class NatsServer:
    """nats-server with JetStream, on a free loopback port, temporary store."""

    def __init__(self, workdir, port=None, extra_args=()):
        self.workdir = workdir
        self.port = port or free_port()
        self.store = os.path.join(workdir, "jetstream")
        self.extra_args = list(extra_args)
        self.proc = None
        # Set both before start() for a server with user/password authorisation.
        self.user = None
        self.password = None

    @property
    def url(self):
        """The URL the workers get: with the credentials when there are some."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"nats://{auth}127.0.0.1:{self.port}"

    def start(self):
        os.makedirs(self.store, exist_ok=True)
        auth = ["--user", self.user, "--pass", self.password] if self.user else []
        self.proc = start_process(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store]
            + auth + self.extra_args,
            os.path.join(self.workdir, f"nats-{self.port}.log"))
        wait_port(self.port)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            stop_process(self.proc, sig=sig)
            self.proc = None


class NatsClient:
    """A plain NATS protocol client: PUB/HPUB and request-reply."""

    def __init__(self, port, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self._read_line()  # INFO
        connect = {"verbose": False, "pedantic": False, "headers": True, "name": "test-client"}
        if user:
            connect.update(user=user, **{"pass": password})
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        self._expect_pong()
        self.sid = 0

    def close(self):
        self.sock.close()

    def _read_line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("NATS closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("NATS closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _expect_pong(self):
        while True:
            line = self._read_line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise RuntimeError(line.decode())

    def publish(self, subject, payload, headers=None):
        if isinstance(payload, str):
            payload = payload.encode()
        if headers:
            hdr = b"NATS/1.0\r\n" + b"".join(
                f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
            self.sock.sendall(f"HPUB {subject} {len(hdr)} {len(hdr) + len(payload)}\r\n".encode()
                              + hdr + payload + b"\r\nPING\r\n")
        else:
            self.sock.sendall(f"PUB {subject} {len(payload)}\r\n".encode() + payload
                              + b"\r\nPING\r\n")
        self._expect_pong()

    def request(self, subject, payload=b"", timeout=5.0):
        self.sid += 1
        inbox = f"_INBOX.test.{self.sid}"
        self.sock.sendall(f"SUB {inbox} {self.sid}\r\n".encode())
        self.sock.sendall(f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\n")
        self.sock.settimeout(timeout)
        while True:
            line = self._read_line()
            if line.startswith(b"MSG"):
                parts = line.split()
                data = self._read_exact(int(parts[-1]) + 2)[:-2]
                self.sock.sendall(f"UNSUB {self.sid}\r\n".encode())
                return data
            if line.startswith(b"HMSG"):
                parts = line.split()
                data = self._read_exact(int(parts[-1]) + 2)[:-2]
                self.sock.sendall(f"UNSUB {self.sid}\r\n".encode())
                return data[int(parts[-2]):]
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")

    def subscribe(self, subject, queue=""):
        """A core NATS subscription (at most once), as the nats-connector makes."""
        self.sid += 1
        self.sock.sendall(f"SUB {subject} {queue} {self.sid}\r\n".replace("  ", " ").encode())
        return self.sid

    def next_msg(self, timeout=5.0):
        """Returns (subject, headers dict, payload) of the next message."""
        self.sock.settimeout(timeout)
        while True:
            line = self._read_line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            if line.startswith(b"MSG "):
                parts = line.split()
                data = self._read_exact(int(parts[-1]) + 2)[:-2]
                return parts[1].decode(), {}, data
            if line.startswith(b"HMSG "):
                parts = line.split()
                raw = self._read_exact(int(parts[-1]) + 2)[:-2]
                hdr_len = int(parts[-2])
                headers = {}
                for h in raw[:hdr_len].decode().split("\r\n")[1:]:
                    if ":" in h:
                        k, v = h.split(":", 1)
                        headers[k.strip()] = v.strip()
                return parts[1].decode(), headers, raw[hdr_len:]

    def stream_info(self, stream="ORDERS"):
        return json.loads(self.request(f"$JS.API.STREAM.INFO.{stream}"))

    def consumer_info(self, durable, stream="ORDERS"):
        return json.loads(self.request(f"$JS.API.CONSUMER.INFO.{stream}.{durable}"))

    def stream_entries(self, subject, stream="ORDERS"):
        """(headers text, data) of every message on subject in the stream,
        oldest first, via the direct get API."""
        info = self.stream_info(stream)
        out = []
        for seq in range(info["state"]["first_seq"], info["state"]["last_seq"] + 1):
            reply = json.loads(self.request(f"$JS.API.STREAM.MSG.GET.{stream}",
                                            json.dumps({"seq": seq}).encode()))
            msg = reply.get("message")
            if msg and msg["subject"] == subject:
                headers = base64.b64decode(msg.get("hdrs", "") or "").decode("utf-8", "replace")
                out.append((headers, base64.b64decode(msg.get("data", "") or "")))
        return out

    def stream_messages(self, subject, stream="ORDERS"):
        """The data of every message on subject in the stream, oldest first."""
        return [data for _headers, data in self.stream_entries(subject, stream)]

    def kv_put(self, bucket, key, value):
        """Writes key in a JetStream key-value bucket (a publish on $KV.<bucket>.<key>
        acknowledged by the stream); returns the revision."""
        if isinstance(value, str):
            value = value.encode()
        ack = json.loads(self.request(f"$KV.{bucket}.{key}", value))
        if "error" in ack:
            raise RuntimeError(f"kv put {bucket}/{key}: {ack['error']}")
        return ack["seq"]

    def kv_get(self, bucket, key):
        """The value of key in a key-value bucket (bytes), or None when absent."""
        reply = json.loads(self.request(f"$JS.API.STREAM.MSG.GET.KV_{bucket}", json.dumps(
            {"last_by_subj": f"$KV.{bucket}.{key}"}).encode()))
        msg = reply.get("message")
        if not msg:
            return None
        return base64.b64decode(msg.get("data", ""))


def http_get(port, path, timeout=5.0):
    """Returns (status, body bytes)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_post(port, path, body=b"", headers=None, timeout=60.0):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError, ConnectionError):
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def eventually(predicate, timeout=10.0, what="condition"):
    """True once predicate() is true, False if it is not within timeout: for
    a check on a step that follows the one the test waited for (a drop is
    archived after its file-ready is published)."""
    try:
        wait_until(predicate, timeout=timeout, what=what)
        return True
    except TimeoutError:
        return False


def read_log_lines(proc_or_path):
    path = proc_or_path if isinstance(proc_or_path, str) else proc_or_path.log_path
    with open(path, "rb") as f:
        return [line.decode("utf-8", "replace") for line in f.read().splitlines()]


def parse_log_records(text_or_lines, raw=False):
    """The one parser of the workers' log lines (one JSON object a line, see
    log.h): the records of a text or a list of lines, in order.  A line that
    is not a JSON object (a sanitizer's report, a crash) is skipped, or kept
    as {"raw": line} when raw is true."""
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else text_or_lines
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            out.append(rec)
        elif raw:
            out.append({"raw": line})
    return out


def log_records(proc_or_path, msg=None):
    """The log records of a worker process (or of a log file), those whose
    msg is msg when it is given."""
    return [r for r in parse_log_records(read_log_lines(proc_or_path))
            if msg is None or r.get("msg") == msg]


_workdirs = []


class Pipeline:
    """A workdir with an inbox, a depot, a NATS server and the three workers."""

    def __init__(self, name="pipeline", inbox_url=None, depot_url=None, extra_env=None):
        self.workdir = tempfile.mkdtemp(prefix=f"dx-{name}-")
        _workdirs.append(self.workdir)
        self.inbox = os.path.join(self.workdir, "inbox")
        self.depot = os.path.join(self.workdir, "depot")
        os.makedirs(self.inbox)
        os.makedirs(self.depot)
        self.inbox_url = inbox_url or f"file://{self.inbox}"
        self.depot_url = depot_url or f"file://{self.depot}"
        self.extra_env = dict(extra_env or {})
        self.nats = NatsServer(self.workdir)
        self.workers = {}
        self.ports = {}

    def env(self, worker, **overrides):
        env = dict(os.environ)
        env.update({
            "NATS_URL": self.nats.url,
            "INBOX_URL": self.inbox_url,
            "DEPOT_URL": self.depot_url,
            "HTTP_ADDR": "127.0.0.1",
            "PORT": str(self.ports.setdefault(worker, free_port())),
            "TZ": "UTC",
            "LOG_LEVEL": "debug",
            "DROP_MIN_AGE": "0",
            "ACK_WAIT": "30",
        })
        env.update(self.extra_env)
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def start_nats(self):
        self.nats.start()
        return self

    def start_worker(self, worker, wait_ready=True, args=(), log_name=None, wrapper=(), **env):
        proc = start_process(worker_command(worker, args, wrapper),
                             os.path.join(self.workdir, f"{log_name or worker}.log"),
                             env=self.env(worker, **env))
        self.workers[log_name or worker] = proc
        if wait_ready:
            port = self.ports[worker]
            wait_until(lambda: proc.poll() is None and http_get(port, "/_/ready")[0] == 200,
                       timeout=30, what=f"{worker} ready")
        return proc

    def start(self, **env):
        self.start_nats()
        self.start_worker("status-checker", **env)
        self.start_worker("file-transformer", **env)
        return self

    def run_checker(self, *args, timeout=60, **env):
        """Runs daily-checker with args; returns (exit code, output text)."""
        res = subprocess.run(worker_command("daily-checker", args), env=self.env(
            "daily-checker", **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=timeout)
        text = res.stdout.decode("utf-8", "replace")
        with open(os.path.join(self.workdir, "daily-checker.log"), "a") as f:
            f.write(text)
        return res.returncode, text

    def drop(self, client, name, content):
        folder = os.path.join(self.inbox, client)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        return path

    def status(self):
        code, body = http_get(self.ports["status-checker"], "/status")
        if code != 200:
            raise ValueError(f"GET /status answered {code}: {body[:200]!r}")
        return json.loads(body)

    def wait_runs(self, clients, order_date, timeout=60):
        def done():
            st = self.status()
            for c in clients:
                runs = st["clients"].get(c, {}).get("dates", {})
                if order_date not in runs:
                    return False
            return st
        return wait_until(done, timeout=timeout, what=f"runs of {clients} for {order_date}")

    def client(self):
        return NatsClient(self.nats.port, self.nats.user, self.nats.password)

    def secret_leaks(self, secret):
        """Where secret shows: the workers' logs (the servers' own logs are
        not ours), their /metrics, and status-checker's /status and page."""
        found = []
        for name in sorted(os.listdir(self.workdir)):
            if name.endswith(".log") and not name.startswith("nats-"):
                with open(os.path.join(self.workdir, name), "rb") as f:
                    if secret.encode() in f.read():
                        found.append(name)
        for worker, proc in self.workers.items():
            port = self.ports.get(worker)
            if port is None or proc.poll() is not None:
                continue
            paths = ["/metrics"] + (["/status", "/"] if worker == "status-checker" else [])
            for path in paths:
                if secret.encode() in http_get(port, path)[1]:
                    found.append(f"{worker} {path}")
        return found

    def stop(self):
        for proc in list(self.workers.values()):
            stop_process(proc)
        self.workers.clear()
        self.nats.stop()

    def dump_logs(self):
        for name in sorted(os.listdir(self.workdir)):
            if name.endswith(".log"):
                print(f"----- {name} -----", file=sys.stderr)
                for line in read_log_lines(os.path.join(self.workdir, name))[-60:]:
                    print(line, file=sys.stderr)


SAMPLE_ORDERS = (
    "order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,"
    "unit_price,currency,status\n"
    "A-1,2026-11-24,C1,ann@example.com,SKU-1,Mug,2,12.50,EUR,delivered\n"
    "A-2,2026-11-24,C2,bob@example.com,SKU-2,Tea,1,4.20,EUR,pending\n"
    "A-3,2026-11-24,C3,cyd@example.com,SKU-3,Pot,3,19.99,EUR,delivered\n"
)


@contextlib.contextmanager
def pipeline_run(t, name, **kwargs):
    """A Pipeline for the body of a test: an exception in the body is a
    failed check (not a crash), and on any failure the logs of every server
    and worker are printed before everything is stopped."""
    p = Pipeline(name, **kwargs)
    try:
        yield p
    except Exception as e:  # noqa: BLE001 - reported as a failure, with logs
        t.check(False, f"exception: {e!r}")
    finally:
        if t.failed:
            p.dump_logs()
        p.stop()


class TestRun:
    """Collects named checks; prints 'N passed, M failed' like the unit tests."""

    # The exit code by which meson (and automake) report a test as SKIP.
    SKIP = 77

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.skipped = []

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", file=sys.stderr)
        return cond

    def skip(self, why):
        """Records a check that could not be made here: the test then exits
        SKIP (77) unless a check failed, never a silent pass."""
        self.skipped.append(why)
        print(f"skipped: {why}", flush=True)

    def finish(self):
        """Prints the counts; removes the pipelines' work folders when every
        check passed (they are kept, logs included, for a failed run)."""
        print(f"{self.name}: {self.passed} passed, {self.failed} failed"
              + (f", {len(self.skipped)} skipped" if self.skipped else ""))
        ok = self.failed == 0 and (self.passed > 0 or self.skipped)
        if ok:
            import shutil
            for workdir in _workdirs:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            for workdir in _workdirs:
                print(f"kept for inspection: {workdir}", file=sys.stderr)
        if ok and self.skipped:
            return self.SKIP
        return 0 if ok else 1
