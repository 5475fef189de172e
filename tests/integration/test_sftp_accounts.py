"""One SFTP account per client, confined to its own folder (issue 15).

The real OpenSSH sshd runs with deploy/k8s/base/sftp/sshd_config (only Port,
HostKey and PidFile replaced) after deploy/k8s/base/sftp/clients.sh has made
the client folders and keys from a clients.conf, in the layout the SFTP pod
has: /home/dataretailx/{inbox,depot}.  The accounts exist only for sshd: it
runs in its own mount namespace (unshare -m) where /etc/passwd, /etc/group
and /home are this test's copies, so nothing of the machine changes.

1. Each client logs in, lands in its own folder and uploads a drop there.
2. A client can neither list, read nor write another client's folder, nor
   list the inbox, nor reach the depot.
3. The pipeline's account sees every client folder and the depot: the real
   workers (daily-checker --once, file-transformer, status-checker) take
   both drops over sftp:// and write the outputs to the depot.
4. clients.sh refuses a bad client line (exit 2).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import harness
from harness import SAMPLE_ORDERS
from sshd import SSHD, Sshd, keygen

DATE = "2026-11-24"
SFTP_DIR = os.path.join(harness.SOURCE_DIR, "deploy", "k8s", "base", "sftp")
PIPELINE_UID = 10001
CLIENTS = {"US1": 20001, "US2": 20002}


class AccountsServer(Sshd):
    """sshd with the SFTP pod's configuration and accounts; started, stopped
    and removed as sshd.Sshd is."""

    def __init__(self):
        super().__init__()
        os.chmod(self.dir, 0o755)
        self.home = os.path.join(self.dir, "home")  # /home for sshd
        self.keys = {name: keygen(os.path.join(self.dir, f"{name}_key"), name)
                     for name in ["dataretailx", *CLIENTS]}

    def write_files(self, clients_conf_lines):
        # The pipeline's account and its key, as atmoz/sftp makes them.
        pipeline_home = os.path.join(self.home, "dataretailx")
        os.makedirs(os.path.join(pipeline_home, ".ssh"))
        os.makedirs(os.path.join(pipeline_home, "inbox"))
        shutil.copyfile(self.keys["dataretailx"] + ".pub",
                        os.path.join(pipeline_home, ".ssh", "authorized_keys"))
        os.chown(os.path.join(pipeline_home, ".ssh"), PIPELINE_UID, PIPELINE_UID)
        self.clients_conf = os.path.join(self.dir, "clients.conf")
        with open(self.clients_conf, "w") as f:
            f.write("# CLIENT UID PUBLIC-KEY\n\n" + "".join(l + "\n" for l in clients_conf_lines))
        # passwd and group: the machine's, plus the accounts the SFTP pod
        # has (atmoz/sftp and clients.sh would make them with useradd).
        with open("/etc/passwd") as f:
            passwd = f.read()
        with open("/etc/group") as f:
            group = f.read()
        passwd += f"dataretailx:x:{PIPELINE_UID}:{PIPELINE_UID}::/home/dataretailx:/usr/sbin/nologin\n"
        passwd += "".join(f"{c}:x:{uid}:10002::/{c}:/usr/sbin/nologin\n" for c, uid in CLIENTS.items())
        group += f"dataretailx:x:{PIPELINE_UID}:\ndataretailx-clients:x:10002:\n"
        for name, text in (("passwd", passwd), ("group", group)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        # The repository's sshd_config, with this test's port, key and pid
        # file, in place of the one sshd.Sshd wrote.
        with open(os.path.join(SFTP_DIR, "sshd_config")) as f:
            lines = f.read().splitlines()
        replaced = {"Port": str(self.port), "HostKey": self.host_key,
                    "PidFile": os.path.join(self.dir, "sshd.pid")}
        out = []
        for line in lines:
            word = line.split(" ", 1)[0]
            out.append(f"{word} {replaced[word]}" if word in replaced else line)
        out.insert(0, "ListenAddress 127.0.0.1")
        with open(self.config, "w") as f:
            f.write("\n".join(out) + "\n")

    def namespace_script(self, command):
        d = self.dir
        return (f"mount --make-rprivate / && mount --bind {d}/passwd /etc/passwd && "
                f"mount --bind {d}/group /etc/group && mount --bind {self.home} /home && {command}")

    def run_clients_sh(self, conf=None):
        """Runs clients.sh in sshd's namespace view; returns (code, output)."""
        env = dict(os.environ, DX_SFTP_CLIENTS=conf or self.clients_conf)
        res = subprocess.run(["unshare", "-m", "sh", "-c", self.namespace_script(
            f"sh {SFTP_DIR}/clients.sh")], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=60)
        return res.returncode, res.stdout.decode(errors="replace")

    def command(self):
        return ["unshare", "-m", "sh", "-c",
                self.namespace_script(f"exec {SSHD} -D -e -f {self.config}")]

    def path(self, rel):
        """Local path of rel under the pipeline's home (its chroot)."""
        return os.path.join(self.home, "dataretailx", rel)

    def sftp(self, user, *commands):
        """Runs sftp commands as user; returns (exit code, output)."""
        batch = os.path.join(self.dir, f"batch-{time.monotonic_ns()}")
        with open(batch, "w") as f:
            f.write("\n".join(commands) + "\n")
        res = subprocess.run(
            ["sftp", "-q", "-F", "/dev/null", "-b", batch, "-P", str(self.port), "-i", self.keys[user],
             "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{user}@127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
            cwd=self.dir)
        return res.returncode, res.stdout.decode(errors="replace")

def client_lines(server):
    lines = []
    for client, uid in CLIENTS.items():
        with open(server.keys[client] + ".pub") as f:
            lines.append(f"{client} {uid} {f.read().strip()}")
    return lines


def test_confinement(t, s):
    for client in CLIENTS:
        local = os.path.join(s.dir, f"{client}.csv")
        with open(local, "w") as f:
            f.write(SAMPLE_ORDERS.replace("A-", client + "-"))
        code, out = s.sftp(client, "pwd", f"put {local} input.csv")
        t.check(code == 0 and f"/{client}" in out, f"{client} lands in its own folder and uploads ({out.strip()})")
        st = os.stat(s.path(f"inbox/{client}/input.csv"))
        t.check(st.st_uid == CLIENTS[client] and st.st_gid == PIPELINE_UID and st.st_mode & 0o007 == 0,
                f"{client}'s upload belongs to it and the pipeline's group, nobody else "
                f"({st.st_uid}:{st.st_gid} {oct(st.st_mode)})")
    denied = {
        "list another client's folder": "ls /US2",
        "read another client's drop": "get /US2/input.csv stolen.csv",
        "write into another client's folder": f"put {s.dir}/US1.csv /US2/planted.csv",
        "list the inbox": "ls /",
        "reach the depot": "ls /depot",
        "climb out of its chroot": "ls ../depot",
        "remove another client's drop": "rm /US2/input.csv",
    }
    for what, command in denied.items():
        code, out = s.sftp("US1", command)
        t.check(code != 0, f"US1 cannot {what} ({command!r}: exit {code}, {out.strip()[-120:]!r})")
    t.check(not os.path.exists(os.path.join(s.dir, "stolen.csv")), "nothing of US2 reached US1")
    t.check(sorted(os.listdir(s.path("inbox/US2"))) == ["input.csv"], "US2's folder is untouched")
    code, out = s.sftp("US2", "ls /US1")
    t.check(code != 0, "US2 cannot list US1's folder either")
    code, out = s.sftp("dataretailx", "ls /inbox/US1", "ls /inbox/US2", "ls /depot")
    t.check(code == 0 and out.count("input.csv") == 2, f"the pipeline's account sees every client ({out.strip()})")


def test_chain(t, s):
    url = f"sftp://dataretailx@127.0.0.1:{s.port}"
    p = harness.Pipeline("sftp-accounts", inbox_url=url + "/inbox", depot_url=url + "/depot",
                         extra_env={"SFTP_KEY_FILE": s.keys["dataretailx"],
                                    "SFTP_KNOWN_HOSTS": s.known_hosts})
    try:
        p.start()
        code, out = p.run_checker("--once", "--date", DATE)
        t.check(code == 0, f"daily-checker --once over the pipeline's account (exit {code}: {out[-300:]})")
        st = p.wait_runs(list(CLIENTS), DATE, timeout=90)
        for client in CLIENTS:
            run = st["clients"][client]["dates"][DATE]
            t.check(run["rows_in"] == 3, f"{client}: its drop went through the chain ({run['rows_in']} rows)")
            got = sorted(os.listdir(s.path(f"depot/{client}/{DATE}")))
            t.check(got == ["input.csv", "input.rejects.csv"], f"{client}: outputs in the depot ({got})")
        code, out = s.sftp("US1", "ls /depot", f"ls /US2/archive/{DATE}")
        t.check(code != 0, "after the run, US1 still reaches neither the depot nor US2's archive")
    except Exception as e:  # noqa: BLE001 - a failed check, with logs
        t.check(False, f"chain: exception: {e!r}")
    finally:
        if t.failed:
            p.dump_logs()
        p.stop()


def main():
    t = harness.TestRun("test_sftp_accounts")
    s = AccountsServer()
    try:
        lines = client_lines(s)
        s.write_files(lines)
        bad = os.path.join(s.dir, "bad.conf")
        for line in ("../US1 20009 ssh-ed25519 AAAA", "US9 notanumber ssh-ed25519 AAAA",
                     "dataretailx 20010 ssh-ed25519 AAAA"):
            with open(bad, "w") as f:
                f.write(line + "\n")
            code, out = s.run_clients_sh(bad)
            t.check(code == 2 and "clients.conf" in out, f"clients.sh refuses {line.split()[0:2]} (exit {code})")
        code, out = s.run_clients_sh()
        t.check(code == 0 and out.count("account ") == len(CLIENTS), f"clients.sh made the folders ({out.strip()})")
        code, again = s.run_clients_sh()
        t.check(code == 0, "clients.sh runs again at the next start (idempotent)")
        t.check(oct(os.stat(s.path("inbox")).st_mode & 0o7777) == "0o751",
                "the inbox: listed by the pipeline, only entered by a client")
        s.start()
        test_confinement(t, s)
        test_chain(t, s)
    except Exception as e:  # noqa: BLE001
        t.check(False, f"exception: {e!r}")
    finally:
        if t.failed:
            print(s.log_tail(), file=sys.stderr)
        s.cleanup()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
