"""A real OpenSSH sshd for integration tests (Python 3 standard library only).

    with Sshd() as server:
        os.makedirs(server.path("inbox/US1"))
        url = server.url("inbox")          # sftp://root@127.0.0.1:PORT/<tmp>/srv/inbox
        env = dict(os.environ, **server.env())  # SFTP_KEY_FILE, SFTP_KNOWN_HOSTS
        ...
        server.stop()                      # every sshd process, live connections too
        server.start()                     # again, same port, same host key

The server listens on 127.0.0.1 only, on a free port, with a host key and a
user key generated into a temporary folder, its own sshd_config (public key
authentication only, internal-sftp) and a served folder tree under
`server.root`.  Everything is removed on exit, and every process it started is
killed even when the test fails.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SSHD = os.environ.get("DX_SSHD", "/usr/sbin/sshd")
SSH_KEYGEN = os.environ.get("DX_SSH_KEYGEN", "ssh-keygen")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path, comment="dx-test"):
    """Creates an unencrypted ed25519 key pair at path and path.pub."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return path


def _children():
    """Maps each pid to the list of its children, from /proc."""
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("latin-1")
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def _descendants(pid):
    tree = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in tree.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class Sshd:
    def __init__(self, user=None):
        self.dir = tempfile.mkdtemp(prefix="dx-sshd-")
        self.root = os.path.join(self.dir, "srv")
        os.makedirs(self.root)
        self.user = user or pwd.getpwuid(os.getuid()).pw_name
        self.port = free_port()
        self.host_key = keygen(os.path.join(self.dir, "ssh_host_ed25519_key"), "dx-test-host")
        self.key_file = keygen(os.path.join(self.dir, "user_key"), "dx-test-user")
        self.authorized_keys = os.path.join(self.dir, "authorized_keys")
        shutil.copyfile(self.key_file + ".pub", self.authorized_keys)
        self.known_hosts = self.known_hosts_for(self.host_key + ".pub", "known_hosts")
        self.log_path = os.path.join(self.dir, "sshd.log")
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as f:
            f.write(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {self.authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
AllowTcpForwarding no
X11Forwarding no
Subsystem sftp internal-sftp
""")
        self.proc = None
        self._log = None

    # ---- files --------------------------------------------------------------

    def path(self, rel=""):
        """Local path of rel inside the served tree."""
        return os.path.join(self.root, rel) if rel else self.root

    def url(self, rel=""):
        """sftp:// URL of rel inside the served tree (absolute on the server)."""
        p = self.path(rel).rstrip("/")
        return f"sftp://{self.user}@127.0.0.1:{self.port}{p}"

    def known_hosts_for(self, pubkey_path, name):
        """Writes a known_hosts file trusting pubkey_path for this server."""
        with open(pubkey_path) as f:
            kind, blob = f.read().split()[:2]
        out = os.path.join(self.dir, name)
        with open(out, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        return out

    def other_known_hosts(self):
        """known_hosts naming another host key for this server (a mismatch)."""
        other = keygen(os.path.join(self.dir, f"other_host_{time.monotonic_ns()}"), "other")
        return self.known_hosts_for(other + ".pub", os.path.basename(other) + ".known_hosts")

    def other_user_key(self):
        """A fresh user key that the server does not authorize."""
        return keygen(os.path.join(self.dir, f"other_user_{time.monotonic_ns()}"), "other")

    def env(self):
        return {"SFTP_KEY_FILE": self.key_file, "SFTP_KNOWN_HOSTS": self.known_hosts}

    def sftp_client(self, batch_file):
        """Command line of OpenSSH's sftp client against this server."""
        return ["sftp", "-q", "-F", "/dev/null", "-b", batch_file, "-P", str(self.port),
                "-i", self.key_file, "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", f"{self.user}@127.0.0.1"]

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    # ---- process ------------------------------------------------------------

    def command(self):
        """The command line of the server (a subclass may wrap it)."""
        return [SSHD, "-D", "-e", "-f", self.config]

    def start(self, timeout=10.0):
        if self.proc is not None:
            return self
        # sshd refuses to start without its privilege separation folder.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(),
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("sshd exited at start:\n" + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sshd did not answer in time:\n" + self.log_tail())
            time.sleep(0.05)

    def stop(self):
        """Kills sshd and every connection it serves (the per-connection
        processes start their own sessions, so the listener's process group
        alone is not enough), as a server crash would."""
        if self.proc is None:
            return
        pid = self.proc.pid
        for p in [pid] + _descendants(pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def connection_pids(self):
        """The processes serving open connections (every descendant of the
        listener: its per-connection child, the session process, sftp-server),
        for a test that stops them while the listener keeps accepting."""
        return _descendants(self.proc.pid) if self.proc is not None else []

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
        return False


def run_on_inbox(t, scheme, name, body, extra_env=None, start=lambda p: p.start()):
    """Runs body(p, inbox) on a harness Pipeline named <name>-<scheme> whose
    inbox is a local folder (scheme "file") or served by a real sshd
    ("sftp"); inbox is its local path.  start(p) starts what the test needs.
    An exception is a failed check; on a failure the logs are printed and the
    work folder kept; the servers are stopped in every case."""
    import harness
    server = None
    p = None
    failed_before = t.failed
    try:
        if scheme == "sftp":
            server = Sshd().start()
            os.makedirs(server.path("inbox"))
            p = harness.Pipeline(f"{name}-sftp", inbox_url=server.url("inbox"),
                                 extra_env=dict(server.env(), **(extra_env or {})))
            inbox = server.path("inbox")
        else:
            p = harness.Pipeline(f"{name}-file", extra_env=extra_env)
            inbox = p.inbox
        start(p)
        body(p, inbox)
    except Exception as e:  # a crash of the test is a failure, with logs
        t.check(False, f"[{scheme}] exception: {e!r}")
    finally:
        if p is not None:
            if t.failed > failed_before:
                p.dump_logs()
            p.stop()
            if t.failed == failed_before:
                shutil.rmtree(p.workdir, ignore_errors=True)
        if server is not None:
            server.cleanup()
