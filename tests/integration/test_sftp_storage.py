#!/usr/bin/env python3
"""The sftp:// storage backend against a real OpenSSH sshd (no mocks).

Drives one storage object through tests/integration/sftp_storage_check (the C
storage interface, linked with workers/common) and checks the server's folder
tree directly: the operations, host key and user key failures, the insecure
mode's warning, connection refused and timeout, the server killed in the
middle of a read and of a write and started again, hostile paths and planted
symbolic links, a 100 MB file streamed both ways with bounded memory, and a
throughput comparison with OpenSSH's sftp client (printed, not asserted).
"""

import hashlib
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from sshd import Sshd  # noqa: E402
import faultlib  # noqa: E402
import harness  # noqa: E402

BUILD = os.environ.get("DX_BUILD_DIR") or os.path.join(HERE, "..", "..", "build")
CHECK = os.environ.get("DX_SFTP_CHECK") or os.path.join(BUILD, "tests", "integration",
                                                        "sftp_storage_check")
BIG_MB = 100
RSS_LIMIT_KB = 40 * 1024
SENTINEL_PASSWORD = "Sentinel-Passw0rd-never-logged"
TRANSIENT = ("io_error", "timeout")


def parse_lines(text):
    """Splits the driver's stdout into results (with "cmd") and log lines."""
    results, logs = [], []
    for obj in harness.parse_log_records(text, raw=True):
        (results if "cmd" in obj or "event" in obj else logs).append(obj)
    return results, logs


def run_once(url, env, *args, timeout=120):
    """Runs one command in a new process; returns (result, logs, stdout+stderr)."""
    proc = subprocess.run([CHECK, url, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    results, logs = parse_lines(proc.stdout)
    result = results[-1] if results else {"cmd": "?", "status": "crashed", "error": proc.stderr}
    return result, logs, proc.stdout + proc.stderr


class Driver:
    """The driver in interactive mode: one storage object, many commands."""

    def __init__(self, url, env):
        self.proc = subprocess.Popen([CHECK, url], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.logs = []

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next(self):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("driver exited: " + self.proc.stderr.read())
            results, logs = parse_lines(line)
            self.logs += logs
            if results:
                return results[0]

    def run(self, line):
        self.send(line)
        return self.next()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


def visible(path):
    """Names in a folder that a listing for drops or outputs would take."""
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


class SftpStorageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Sshd()
        cls.server.start()
        srv = cls.server
        for client in ("US1", "US2"):
            os.makedirs(srv.path(f"inbox/{client}"))
            with open(srv.path(f"inbox/{client}/input.csv"), "w") as f:
                f.write(f"order_id,client\n1,{client}\n")
        os.makedirs(srv.path("depot"))
        # A 100 MB drop, written in 1 MB blocks so that this process stays
        # small (its RSS at fork time would show in the children's ru_maxrss).
        cls.big_local = os.path.join(srv.dir, "big-local.csv")
        h = hashlib.sha256()
        with open(cls.big_local, "wb") as f:
            for _ in range(BIG_MB):
                block = os.urandom(1 << 20)
                h.update(block)
                f.write(block)
        cls.big_sha = h.hexdigest()
        shutil.copyfile(cls.big_local, srv.path("inbox/US1/big.csv"))
        cls.env = dict(os.environ, **srv.env())
        for var in ("SFTP_PASSWORD_FILE", "SFTP_INSECURE_SKIP_HOST_KEY", "SFTP_TIMEOUT_SECONDS"):
            cls.env.pop(var, None)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        # A test that stops the server must not leave it stopped for the next.
        self.server.start()

    def url(self, rel=""):
        return self.server.url(rel)

    def assertNoSecret(self, text):
        with open(self.server.key_file) as f:
            key_lines = [l.strip() for l in f if l.strip() and "PRIVATE KEY" not in l]
        for line in key_lines:
            self.assertNotIn(line, text)
        self.assertNotIn(SENTINEL_PASSWORD, text)

    # ---- operations ---------------------------------------------------------

    def test_operations(self):
        srv = self.server
        d = Driver(self.url("inbox"), self.env)
        try:
            self.assertEqual(d.run("ping")["status"], "ok")
            r = d.run("list -")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual([e["name"] for e in r["entries"]], ["US1", "US2"])
            self.assertEqual({e["kind"] for e in r["entries"]}, {"dir"})

            r = d.run("stat US2/input.csv")
            self.assertEqual((r["status"], r["kind"], r["size"]), ("ok", "file", 22), r)
            self.assertEqual(d.run("stat US2/missing.csv")["status"], "not_found")
            self.assertEqual(d.run("list US9")["status"], "not_found")

            r = d.run("get US2/input.csv")
            self.assertEqual(r["sha256"], hashlib.sha256(b"order_id,client\n1,US2\n").hexdigest())
            self.assertEqual(d.run("get US2/missing.csv")["status"], "not_found")

            self.assertEqual(d.run("mkdirs US2/archive/2026-11-24")["status"], "ok")
            self.assertEqual(d.run("mkdirs US2/archive/2026-11-24")["status"], "ok")
            self.assertTrue(os.path.isdir(srv.path("inbox/US2/archive/2026-11-24")))

            # Atomic write into a folder that does not exist yet; replacing.
            self.assertEqual(d.run("text US2/out/result.csv first")["status"], "ok")
            self.assertEqual(d.run("text US2/out/result.csv second")["status"], "ok")
            with open(srv.path("inbox/US2/out/result.csv")) as f:
                self.assertEqual(f.read(), "second")
            self.assertEqual(os.listdir(srv.path("inbox/US2/out")), ["result.csv"])

            # Abort leaves nothing behind, not even the temporary file.
            r = d.run(f"abort {self.big_local} US2/out/aborted.csv")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(os.listdir(srv.path("inbox/US2/out")), ["result.csv"])

            # Rename into a new folder, then onto an existing file (replaced).
            self.assertEqual(d.run("rename US2/out/result.csv US2/archive/x/result.csv")["status"],
                             "ok")
            self.assertEqual(d.run("text US2/out/result.csv third")["status"], "ok")
            self.assertEqual(d.run("rename US2/out/result.csv US2/archive/x/result.csv")["status"],
                             "ok")
            with open(srv.path("inbox/US2/archive/x/result.csv")) as f:
                self.assertEqual(f.read(), "third")
            self.assertEqual(os.listdir(srv.path("inbox/US2/archive/x")), ["result.csv"])
            self.assertEqual(d.run("rename US2/out/nothing.csv US2/x.csv")["status"], "not_found")

            r = d.run("list US2")
            self.assertEqual([e["name"] for e in r["entries"]], ["archive", "input.csv", "out"])
            self.assertEqual(d.run("remove US2/archive/x/result.csv")["status"], "ok")
            self.assertEqual(d.run("remove US2/archive/x/result.csv")["status"], "not_found")
        finally:
            d.close()
            shutil.rmtree(srv.path("inbox/US2/archive"), ignore_errors=True)
            shutil.rmtree(srv.path("inbox/US2/out"), ignore_errors=True)

    def test_hostile_paths_and_planted_links(self):
        srv = self.server
        # A client plants links in its own folder (SFTP lets it): one to the
        # other client's folder, one to a file outside the tree.
        os.symlink("../US2", srv.path("inbox/US1/archive"))
        os.symlink("/etc/passwd", srv.path("inbox/US1/passwd.csv"))
        d = Driver(self.url("inbox"), self.env)
        try:
            for cmd in ("get ../inbox/US2/input.csv", "list US1/../US2", "get US1/./input.csv",
                        "stat /etc/passwd", "rename US1/input.csv ../US2/x.csv",
                        "text US1//x.csv no", "mkdirs US1/.."):
                r = d.run(cmd)
                self.assertEqual(r["status"], "invalid", (cmd, r))
            # Listed as "other", never opened or followed.
            r = d.run("list US1")
            kinds = {e["name"]: e["kind"] for e in r["entries"]}
            self.assertEqual(kinds["archive"], "other")
            self.assertEqual(kinds["passwd.csv"], "other")
            for cmd in ("get US1/passwd.csv", "get US1/archive/input.csv", "list US1/archive",
                        "rename US1/input.csv US1/archive/2026-11-24/input.csv",
                        "text US1/archive/stolen.csv x", "mkdirs US1/archive/2026-11-24"):
                r = d.run(cmd)
                self.assertEqual(r["status"], "invalid", (cmd, r))
            self.assertTrue(os.path.exists(srv.path("inbox/US1/input.csv")))
            self.assertEqual(sorted(os.listdir(srv.path("inbox/US2"))), ["input.csv"])
        finally:
            d.close()
            os.unlink(srv.path("inbox/US1/archive"))
            os.unlink(srv.path("inbox/US1/passwd.csv"))

    # ---- host key and authentication ----------------------------------------

    def password_file(self):
        path = os.path.join(self.server.dir, "password")
        with open(path, "w") as f:
            f.write(SENTINEL_PASSWORD + "\n")
        return path

    def test_wrong_host_key_is_permanent(self):
        env = dict(self.env, SFTP_KNOWN_HOSTS=self.server.other_known_hosts(),
                   SFTP_PASSWORD_FILE=self.password_file())
        r, logs, out = run_once(self.url("inbox"), env, "list", "US1")
        self.assertEqual(r["status"], "permanent", r)
        self.assertIn("does not match SFTP_KNOWN_HOSTS", r["error"])
        self.assertIn("SHA256:", r["error"])
        self.assertEqual(len(r["error"].splitlines()), 1)
        self.assertNoSecret(out)
        print(f"\n  wrong host key: {r['error']}")

    def test_unknown_host_is_permanent(self):
        empty = os.path.join(self.server.dir, "empty_known_hosts")
        open(empty, "w").close()
        r, _, out = run_once(self.url("inbox"), dict(self.env, SFTP_KNOWN_HOSTS=empty), "ping")
        self.assertEqual(r["status"], "permanent", r)
        self.assertIn("is not in SFTP_KNOWN_HOSTS", r["error"])
        missing = os.path.join(self.server.dir, "no_such_known_hosts")
        r, _, out = run_once(self.url("inbox"), dict(self.env, SFTP_KNOWN_HOSTS=missing), "ping")
        self.assertEqual(r["status"], "permanent", r)
        self.assertIn("cannot read SFTP_KNOWN_HOSTS", r["error"])
        self.assertNoSecret(out)

    def test_wrong_user_key_is_permanent(self):
        env = dict(self.env, SFTP_KEY_FILE=self.server.other_user_key(),
                   SFTP_PASSWORD_FILE=self.password_file())
        r, _, out = run_once(self.url("inbox"), env, "get", "US1/input.csv")
        self.assertEqual(r["status"], "permanent", r)
        self.assertIn("authentication", r["error"])
        self.assertNoSecret(out)
        with open(env["SFTP_KEY_FILE"]) as f:
            for line in f:
                if line.strip() and "PRIVATE KEY" not in line:
                    self.assertNotIn(line.strip(), out)
        print(f"\n  wrong user key: {r['error']}")

    def test_missing_or_bad_key_file_is_permanent(self):
        missing = os.path.join(self.server.dir, "no_such_key")
        r, _, _ = run_once(self.url("inbox"), dict(self.env, SFTP_KEY_FILE=missing), "ping")
        self.assertEqual(r["status"], "permanent", r)
        self.assertIn("SFTP_KEY_FILE", r["error"])
        garbage = os.path.join(self.server.dir, "garbage_key")
        with open(garbage, "w") as f:
            f.write("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-base64-Sentinel\n"
                    "-----END OPENSSH PRIVATE KEY-----\n")
        r, _, out = run_once(self.url("inbox"), dict(self.env, SFTP_KEY_FILE=garbage), "ping")
        self.assertEqual(r["status"], "permanent", r)
        self.assertNotIn("not-base64-Sentinel", out)

    def test_insecure_skip_host_key_warns_at_every_connection(self):
        env = dict(self.env, SFTP_KNOWN_HOSTS=self.server.other_known_hosts(),
                   SFTP_INSECURE_SKIP_HOST_KEY="1")
        d = Driver(self.url("inbox"), env)
        try:
            self.assertEqual(d.run("ping")["status"], "ok")
            self.assertEqual(d.run("list US1")["status"], "ok")
            self.server.stop()
            self.server.start()
            # The stale connection is replaced on the next call.
            self.assertEqual(d.run("list US1")["status"], "ok")
        finally:
            d.close()
        warnings = [l for l in d.logs if l.get("level") == "warn" and "NOT verified" in l["msg"]]
        self.assertEqual(len(warnings), 2, d.logs)
        self.assertIn("SFTP_INSECURE_SKIP_HOST_KEY", warnings[0]["msg"])

    def test_bad_settings_are_refused_at_create(self):
        for url in ("sftp://127.0.0.1/srv", "sftp://u:pw-Sentinel@127.0.0.1/srv",
                    "sftp://u@127.0.0.1:0/srv", "sftp://u@127.0.0.1:99999/srv",
                    "sftp://u@127.0.0.1", "sftp://u;rm@127.0.0.1/srv"):
            proc = subprocess.run([CHECK, url, "ping"], env=self.env, capture_output=True,
                                  text=True)
            self.assertEqual(proc.returncode, 1, url)
            self.assertIn('"invalid"', proc.stdout, url)
            self.assertNotIn("pw-Sentinel", proc.stdout + proc.stderr)
        proc = subprocess.run([CHECK, self.url("inbox"), "ping"],
                              env=dict(self.env, SFTP_TIMEOUT_SECONDS="soon"),
                              capture_output=True, text=True)
        self.assertIn('"invalid"', proc.stdout)

    # ---- transient failures ---------------------------------------------------

    def test_connection_refused_is_transient(self):
        url = self.url("inbox")
        self.server.stop()
        try:
            r, _, _ = run_once(url, self.env, "list", "US1")
            self.assertEqual(r["status"], "io_error", r)
            self.assertIn("refused", r["error"].lower())
        finally:
            self.server.start()

    def test_silent_server_times_out(self):
        # A listener that accepts the TCP connection but never speaks SSH.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            port = silent.getsockname()[1]
            url = f"sftp://{self.server.user}@127.0.0.1:{port}/srv"
            start = time.monotonic()
            r, _, _ = run_once(url, dict(self.env, SFTP_TIMEOUT_SECONDS="2"), "ping")
            elapsed = time.monotonic() - start
        self.assertIn(r["status"], TRANSIENT, r)
        self.assertLess(elapsed, 30)

    def test_server_killed_mid_read_then_reconnects(self):
        d = Driver(self.url("inbox"), self.env)
        try:
            self.assertEqual(d.run("ping")["status"], "ok")
            self.assertEqual(d.run("get US1/big.csv 20000000")["event"], "paused")
            self.server.stop()
            r = d.run("")  # go on reading with the server gone
            self.assertIn(r["status"], TRANSIENT, r)
            self.assertLess(r["bytes"], BIG_MB << 20)
            self.assertEqual(d.run("list US1")["status"], "io_error")  # still down
            self.server.start()
            r = d.run("get US1/big.csv")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["sha256"], self.big_sha)
        finally:
            d.close()

    def test_server_stopped_mid_read_times_out_then_reconnects(self):
        # The connection stays open but the server stops answering: its
        # per-connection processes are stopped (SIGSTOP), the listener is not.
        env = dict(self.env, SFTP_TIMEOUT_SECONDS="2")
        d = Driver(self.url("inbox"), env)
        stopped = []
        try:
            self.assertEqual(d.run("ping")["status"], "ok")
            self.assertEqual(d.run("get US1/big.csv 20000000")["event"], "paused")
            stopped = self.server.connection_pids()
            self.assertTrue(stopped, "no per-connection sshd process found")
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            start = time.monotonic()
            d.send("")  # go on reading from the stopped server
            # A hang guard, not a speed claim: without a bound the read never returns.
            ready, _, _ = select.select([d.proc.stdout], [], [], 60)
            self.assertTrue(ready, "the read did not return with the server stopped")
            r = d.next()
            elapsed = time.monotonic() - start
            self.assertEqual(r["status"], "timeout", r)
            self.assertIn("no answer from the SFTP server", r["error"])
            self.assertLess(r["bytes"], BIG_MB << 20)
            self.assertLess(elapsed, 30)
            self.assertTrue(any("no answer from the SFTP server" in l.get("msg", "")
                                for l in d.logs), d.logs)
            for pid in stopped:
                self._kill_stopped(pid)
            stopped = []
            r = d.run("get US1/big.csv")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["sha256"], self.big_sha)
        finally:
            for pid in stopped:
                self._kill_stopped(pid)
            d.close()

    @staticmethod
    def _kill_stopped(pid):
        for sig in (signal.SIGKILL, signal.SIGCONT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def test_server_killed_mid_write_leaves_no_partial_file(self):
        srv = self.server
        target_dir = srv.path("depot/US1/2026-11-24")
        d = Driver(self.url("depot"), self.env)
        try:
            r = d.run(f"put {self.big_local} US1/2026-11-24/big.csv 30000000")
            self.assertEqual(r["event"], "paused", r)
            srv.stop()
            r = d.run("")
            self.assertIn(r["status"], TRANSIENT, r)
            # Only the hidden temporary file may be there, never the target.
            self.assertEqual(visible(target_dir), [])
            srv.start()
            r = d.run(f"put {self.big_local} US1/2026-11-24/big.csv")
            self.assertEqual(r["status"], "ok", r)
            # The temporary file of the broken attempt was removed on reconnect.
            self.assertEqual(os.listdir(target_dir), ["big.csv"])
            self.assertEqual(faultlib.sha256_file(os.path.join(target_dir, "big.csv")), self.big_sha)
            # Killed between two writes of a replacement: the old file stays whole.
            r = d.run(f"put {self.big_local} US1/2026-11-24/big.csv 50000000")
            self.assertEqual(r["event"], "paused", r)
            srv.stop()
            self.assertIn(d.run("")["status"], TRANSIENT)
            self.assertEqual(visible(target_dir), ["big.csv"])
            self.assertEqual(faultlib.sha256_file(os.path.join(target_dir, "big.csv")), self.big_sha)
            srv.start()
            self.assertEqual(d.run("ping")["status"], "ok")
            self.assertEqual(os.listdir(target_dir), ["big.csv"])
        finally:
            d.close()
            shutil.rmtree(srv.path("depot/US1"), ignore_errors=True)

    # ---- 100 MB: memory and throughput ----------------------------------------

    def test_big_file_bounded_memory_and_throughput(self):
        srv = self.server
        url = self.url("inbox")
        timings = {}
        peaks = []
        for attempt in range(3):
            start = time.monotonic()
            r, _, _ = run_once(url, self.env, "get", "US1/big.csv")
            timings.setdefault("ours_get", []).append(time.monotonic() - start)
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["sha256"], self.big_sha)
            peaks.append(r["peak_rss_kb"])
        for attempt in range(3):
            start = time.monotonic()
            r, _, _ = run_once(url, self.env, "put", self.big_local, "US1/big-up.csv")
            timings.setdefault("ours_put", []).append(time.monotonic() - start)
            self.assertEqual(r["status"], "ok", r)
            peaks.append(r["peak_rss_kb"])
        self.assertEqual(faultlib.sha256_file(srv.path("inbox/US1/big-up.csv")), self.big_sha)
        children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

        batch_get = os.path.join(srv.dir, "batch-get")
        with open(batch_get, "w") as f:
            f.write(f"get {srv.path('inbox/US1/big.csv')} /dev/null\n")
        batch_put = os.path.join(srv.dir, "batch-put")
        with open(batch_put, "w") as f:
            f.write(f"put {self.big_local} {srv.path('inbox/US1/big-sftp.csv')}\n")
        for name, batch in (("sftp_get", batch_get), ("sftp_put", batch_put)):
            for attempt in range(3):
                start = time.monotonic()
                proc = subprocess.run(srv.sftp_client(batch), capture_output=True, text=True)
                timings.setdefault(name, []).append(time.monotonic() - start)
                self.assertEqual(proc.returncode, 0, proc.stderr)
        os.unlink(srv.path("inbox/US1/big-up.csv"))
        os.unlink(srv.path("inbox/US1/big-sftp.csv"))

        def rate(name):
            return BIG_MB / min(timings[name])

        print(f"\n  {BIG_MB} MB over sftp:// on loopback (best of 3, whole process incl. connect):"
              f"\n    read : ours {rate('ours_get'):7.1f} MB/s   sftp client {rate('sftp_get'):7.1f}"
              f" MB/s   ratio {rate('ours_get') / rate('sftp_get'):.2f}"
              f"\n    write: ours {rate('ours_put'):7.1f} MB/s   sftp client {rate('sftp_put'):7.1f}"
              f" MB/s   ratio {rate('ours_put') / rate('sftp_put'):.2f}"
              f"\n  peak RSS of the storage driver: {max(peaks) / 1024:.1f} MB (VmHWM),"
              f" children ru_maxrss {children_kb / 1024:.1f} MB (limit {RSS_LIMIT_KB // 1024} MB)")
        limit = harness.rss_limit_kb(CHECK, RSS_LIMIT_KB)
        self.assertLess(max(peaks), limit)
        self.assertLess(children_kb, limit)


if __name__ == "__main__":
    if not os.path.exists(CHECK):
        sys.exit(f"missing {CHECK}: build it first (ninja -C <builddir>)")
    # Run the memory measurement first, while every child so far is small.
    unittest.TestLoader.sortTestMethodsUsing = lambda _, a, b: (
        (a != "test_big_file_bounded_memory_and_throughput") -
        (b != "test_big_file_bounded_memory_and_throughput")) or ((a > b) - (a < b))
    unittest.main(verbosity=2)
