"""The production form under test (issue 15): the three images, built from
./Dockerfile with Debian's podman, run the chain the way the manifests run
them.

1. The base images are made from the Debian archive and the three images
   built (tests/container/podman.py; both cached in podman's storage).
   Under scripts/test that was started in the background
   (DX_CONTAINER_PREP): the suite waits for it, shows its log and fails if
   it failed, then builds again (from the layer cache), so the images
   checked are always the ones built from the Dockerfile here.
2. Each image: its full name docker.io/dataretailx/<worker>:test, at most
   90 MB, no compiler, assembler, linker or -dev package inside, numeric
   non-root user, exec-form entrypoint.
3. Service mode (the standalone overlay): nats-server (JetStream) and sshd on
   loopback, the three containers with host networking, --read-only and no
   tmpfs at all, --user 10001:10001, --cap-drop ALL, --security-opt
   no-new-privileges, the SFTP key and known_hosts bind-mounted read-only at
   /var/openfaas/secrets/; daily-checker --once -> file-transformer ->
   status-checker over sftp://, then daily-checker as a service with its
   own SCHEDULE.  Inside, no path is writable, no capability is held,
   no_new_privs is set.
4. Function mode (OpenFaaS): the same containers with stack.yml's own
   environment (only the cluster addresses and the port replaced, as
   `faas-cli deploy --env` would), SUBSCRIBE=0, invoked over HTTP the way the
   cron-connector and the nats-connector do.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
import podman as pm  # noqa: E402
from harness import SAMPLE_ORDERS  # noqa: E402
from sshd import Sshd  # noqa: E402
from test_function_mode import ConnectorDriver  # noqa: E402

DATE = "2026-11-24"
# How long to wait for scripts/test's background preparation: less than
# the meson timeout, so that its failure is this suite's.
PREP_TIMEOUT = 1200
MAX_IMAGE_BYTES = 90 * 1000 * 1000
SECRETS = "/var/openfaas/secrets"
WORKER_UID = 10001
# What must not be in a runtime image: a compiler, an assembler or a linker
# (by file name), nor their packages or any -dev package (by dpkg status).
TOOL_FILE = re.compile(r"^(usr/)?(local/)?s?bin/(cc|c\+\+|c89|c99|gcc|g\+\+|cpp|clang|tcc|as|ld|"
                       r"ld\.(bfd|gold)|[a-z0-9_]+-linux-gnu-(gcc|g\+\+|cpp|as|ld))(-[0-9.]+)?$")
TOOL_PACKAGE = re.compile(r"^(gcc(-[0-9]+)?|g\+\+(-[0-9]+)?|cpp(-[0-9]+)?|clang(-[0-9]+)?|binutils.*|"
                          r"build-essential|make|tcc|libc6-dev|.*-dev)$")


def figure(text):
    print(f"figure: {text}", flush=True)


def stack_environment(worker):
    """The `environment` stack.yml gives worker (faas-cli's ${VAR:-default}
    substitution does not touch it)."""
    import yaml
    with open(os.path.join(pm.SOURCE_DIR, "stack.yml"), encoding="utf-8") as f:
        stack = yaml.safe_load(f)
    return {k: str(v) for k, v in stack["functions"][worker]["environment"].items()}


class ContainerPipeline(harness.Pipeline):
    """harness.Pipeline with the workers in containers and the inbox and the
    depot on a real sshd; everything else (drops, /status, NATS) as in the
    integration tests."""

    def __init__(self, name, podman, server, secrets_dir, base_env):
        super().__init__(name, inbox_url=server.url("inbox"), depot_url=server.url("depot"))
        self.podman = podman
        self.server = server
        self.secrets_dir = secrets_dir
        self.base_env = base_env
        self.inbox = server.path("inbox")
        self.depot = server.path("depot")
        self.containers = []

    def container_env(self, worker, overrides):
        env = dict(self.base_env(worker))
        env.update({
            "NATS_URL": self.nats.url,
            "INBOX_URL": self.inbox_url,
            "DEPOT_URL": self.depot_url,
            # Host networking: each worker on its own loopback port.
            "HTTP_ADDR": "127.0.0.1",
            "PORT": str(self.ports.setdefault(worker, harness.free_port())),
        })
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def run_args(self, worker, env, args, name):
        """podman run as the manifests run the workers."""
        self.containers.append(name)
        cmd = ["podman", "run", "--rm", "--name", name, "--network", "host",
               "--read-only", "--read-only-tmpfs=false", "--user", f"{WORKER_UID}:{WORKER_UID}",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-v", f"{self.secrets_dir}:{SECRETS}:ro"]
        for k, v in sorted(env.items()):
            cmd += ["-e", f"{k}={v}"]
        return cmd + [pm.image_name(worker), *args]

    def start_worker(self, worker, wait_ready=True, args=(), log_name=None, **env):
        name = f"dx-{log_name or worker}-{uuid.uuid4().hex[:8]}"
        proc = harness.start_process(
            self.run_args(worker, self.container_env(worker, env), args, name),
            os.path.join(self.workdir, f"{log_name or worker}.log"), env=self.podman.env)
        proc.container = name
        self.workers[log_name or worker] = proc
        if wait_ready:
            port = self.ports[worker]
            harness.wait_until(lambda: proc.poll() is None and
                               harness.http_get(port, "/_/ready")[0] == 200,
                               timeout=60, what=f"{worker} container ready")
        return proc

    def run_checker(self, *args, timeout=120, **env):
        name = f"dx-daily-checker-once-{uuid.uuid4().hex[:8]}"
        res = subprocess.run(self.run_args("daily-checker", self.container_env(
            "daily-checker", env), args, name), env=self.podman.env, timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = res.stdout.decode("utf-8", "replace")
        with open(os.path.join(self.workdir, "daily-checker.log"), "a") as f:
            f.write(text)
        return res.returncode, text

    def stop(self):
        super().stop()
        for name in self.containers:
            self.podman.run("rm", "-f", "-t", "5", name, check=False)


def make_secrets(server, workdir):
    """The sftp-key and sftp-known-hosts files as OpenFaaS mounts them,
    readable by the worker's uid only (the key) and by all (known_hosts)."""
    folder = os.path.join(workdir, "secrets")
    os.makedirs(folder)
    os.chmod(folder, 0o755)
    for src, name, mode in ((server.key_file, "sftp-key", 0o400),
                            (server.known_hosts, "sftp-known-hosts", 0o444)):
        dst = os.path.join(folder, name)
        shutil.copyfile(src, dst)
        os.chown(dst, WORKER_UID, WORKER_UID)
        os.chmod(dst, mode)
    return folder


def backdate(path, seconds=3600):
    """A drop older than DROP_MIN_AGE (stack.yml keeps its 30 s)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def check_image(t, podman, worker, workdir):
    name = pm.image_name(worker)
    info = json.loads(podman.out("image", "inspect", name))[0]
    t.check(name in (info.get("RepoTags") or []), f"{worker}: tagged {name} ({info.get('RepoTags')})")
    size = int(info["Size"])
    figure(f"{name}: {size / 1e6:.1f} MB")
    t.check(size <= MAX_IMAGE_BYTES, f"{worker}: image {size / 1e6:.1f} MB <= 90 MB")
    cfg = info.get("Config") or {}
    t.check(cfg.get("User") == f"{WORKER_UID}:{WORKER_UID}", f"{worker}: user {cfg.get('User')}")
    t.check(cfg.get("Entrypoint") == ["/usr/local/bin/worker"],
            f"{worker}: exec-form entrypoint ({cfg.get('Entrypoint')})")
    # The image's file tree, as a tar, read without running anything in it.
    cid = podman.out("create", name).strip()
    try:
        tar_path = os.path.join(workdir, f"{worker}.tar")
        podman.run("export", "-o", tar_path, cid)
    finally:
        podman.run("rm", "-f", cid, check=False)
    with tarfile.open(tar_path) as tar:
        names = [m.name.lstrip("./") for m in tar.getmembers()]
        status = tar.extractfile(next(m for m in tar.getmembers()
                                      if m.name.lstrip("./") == "var/lib/dpkg/status")).read()
    os.unlink(tar_path)
    tools = sorted(n for n in names if TOOL_FILE.match(n))
    t.check(not tools, f"{worker}: no compiler, assembler or linker in the image ({tools})")
    installed = re.findall(r"^Package: (\S+)\n(?:(?!\n\n).)*?^Status: install ok installed",
                           status.decode(), re.M | re.S)
    bad = sorted(p for p in installed if TOOL_PACKAGE.match(p))
    t.check(installed and not bad, f"{worker}: no build package installed ({bad})")
    t.check(f"usr/local/bin/{worker}" in names and
            not any(f"usr/local/bin/{w}" in names for w in pm.WORKERS if w != worker),
            f"{worker}: holds its own binary and no other worker's")
    t.check("usr/local/bin/dxctl" in names, f"{worker}: holds dxctl, the operator's command")
    # `file-transformer` execs the service from its own folder (main.c).
    t.check(("usr/local/bin/file-transformer-service" in names) == (worker == "file-transformer"),
            f"{worker}: holds file-transformer-service exactly when it is file-transformer")
    t.check(not any(n.startswith("var/cache/apt/") and n.endswith(".bin") for n in names) and
            not any(n.startswith("var/lib/apt/lists/") and n.endswith("_Packages") for n in names),
            f"{worker}: no apt cache or package list left in the image")


def check_confinement(t, p, worker):
    """Inside the running container: no writable path, no capability.
    /dev/shm (the runtime's, as in a pod) is the probe's own control: the
    one place it must find writable, or the probe itself is broken."""
    name = p.workers[worker].container
    probe = ("for d in /dev/shm / /tmp /var/tmp /run /etc /home /usr/local/bin " + SECRETS + "; do "
             "if (: > \"$d/.dx-write-probe\") 2>/dev/null; then echo \"writable $d\"; fi; done; "
             "grep -E '^(Uid|CapEff|CapPrm|NoNewPrivs):' /proc/1/status")
    res = p.podman.run("exec", name, "/bin/sh", "-c", probe, check=False)
    out = res.stdout.decode()
    t.check(res.returncode == 0, f"{worker}: the probe ran (exit {res.returncode}: {out[-300:]!r} "
                                 f"{res.stderr.decode()[-300:]!r})")
    writable = re.findall(r"^writable (\S+)$", out, re.M)
    t.check(writable == ["/dev/shm"], f"{worker}: no writable path but the control /dev/shm ({writable})")
    fields = dict(re.findall(r"^(\w+):\s*(.*)$", out, re.M))
    t.check(fields.get("Uid", "").split()[:1] == [str(WORKER_UID)], f"{worker}: runs as uid 10001")
    t.check(fields.get("CapEff") == "0000000000000000" and fields.get("CapPrm") == "0000000000000000",
            f"{worker}: holds no capability ({fields.get('CapEff')})")
    t.check(fields.get("NoNewPrivs") == "1", f"{worker}: no_new_privs set")
    mounts = json.loads(p.podman.out("inspect", "--format", "{{json .Mounts}}", name))
    t.check([m.get("Destination") for m in mounts] == [SECRETS] and
            not any(m.get("RW") for m in mounts), f"{worker}: one mount, the secrets, read-only ({mounts})")


def test_service_mode(t, p):
    """The standalone overlay's way: JetStream consumers, daily-checker --once."""
    for client, prefix in (("US1", "A-"), ("US2", "B-")):
        backdate(p.drop(client, "input.csv", SAMPLE_ORDERS.replace("A-", prefix)))
    os.makedirs(p.depot, exist_ok=True)
    p.start_nats()
    for worker in ("status-checker", "file-transformer"):
        p.start_worker(worker, SUBSCRIBE="1")
    code, out = p.run_checker("--once", "--date", DATE)
    t.check(code == 0, f"daily-checker --once in its container (exit {code}: {out[-400:]})")
    st = p.wait_runs(["US1", "US2"], DATE, timeout=120)
    for client in ("US1", "US2"):
        run = st["clients"][client]["dates"][DATE]
        t.check(run["rows_in"] == 3, f"service: {client} rows_in 3 (got {run['rows_in']})")
        got = sorted(os.listdir(os.path.join(p.depot, client, DATE)))
        t.check(got == ["input.csv", "input.rejects.csv"], f"service: {client} depot files {got}")
        t.check(os.path.isfile(os.path.join(p.inbox, client, "archive", DATE, "input.csv")),
                f"service: {client} drop archived on the SFTP server")
        t.check(st["clients"][client]["files_in_depot"] == 2,
                f"service: status-checker lists {client}'s 2 depot files")
    with open(os.path.join(p.depot, "US1", DATE, "input.csv")) as f:
        t.check(f.read().count("\n") == 4, "service: US1's output holds its header and 3 rows")
    # daily-checker as the standalone Deployment runs it: its own SCHEDULE.
    p.start_worker("daily-checker", SCHEDULE="0 8 * * *", CATCHUP_MAX_DAYS="7")
    code, body = harness.http_get(p.ports["daily-checker"], "/metrics")
    t.check(code == 200 and b"dx_" in body, "service: daily-checker with SCHEDULE serves /metrics")
    for worker in ("status-checker", "file-transformer", "daily-checker"):
        check_confinement(t, p, worker)
    code, body = harness.http_get(p.ports["file-transformer"], "/metrics")
    t.check(code == 200 and b"# TYPE" in body, "service: file-transformer serves /metrics")


def test_function_mode(t, p):
    """The OpenFaaS way: stack.yml's environment, SUBSCRIBE=0, HTTP only."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    backdate(p.drop("US3", "input.csv", SAMPLE_ORDERS.replace("A-", "C-")))
    os.makedirs(p.depot, exist_ok=True)
    p.start_nats()
    for worker in ("status-checker", "file-transformer", "daily-checker"):
        p.start_worker(worker)
        t.check(p.container_env(worker, {})["SUBSCRIBE"] == "0", f"{worker}: SUBSCRIBE=0 from stack.yml")
    driver = ConnectorDriver(p)
    driver.start()
    try:
        code, body = harness.http_post(p.ports["daily-checker"], "/", b"", headers={
            "X-Topic": "cron-function", "X-Connector": "cron-connector"})
        t.check(code == 200, f"function: cron invocation 200 (got {code}: {body[:300]!r})")
        published = json.loads(body).get("published", []) if code == 200 else []
        t.check([e["client_id"] for e in published] == ["US3"] and
                published[0]["order_date"] == today, f"function: one order-date for US3 today ({published})")
        st = p.wait_runs(["US3"], today, timeout=120)
        run = st["clients"]["US3"]["dates"][today]
        t.check(run["rows_in"] == 3 and run["trace_id"] == published[0]["trace_id"],
                f"function: US3's run reached status-checker with the cron trace id ({run})")
        got = sorted(os.listdir(os.path.join(p.depot, "US3", today)))
        t.check(got == ["input.csv", "input.rejects.csv"], f"function: US3 depot files {got}")
        harness.wait_until(lambda: any(s == "orders.file-ready" for s, _, _, _ in driver.answers),
                           timeout=30, what="status-checker invoked with FileReady")
        answers = [(s, f, c) for s, f, c, _ in driver.answers]
        t.check(answers and all(c == 200 for _, _, c in answers),
                f"function: every connector invocation answered 200 ({answers})")
        info = p.client().consumer_info("file-transformer")
        t.check("error" in info, "function: no durable consumer (nothing read from JetStream)")
        code, body = harness.http_get(p.ports["status-checker"], "/status")
        t.check(code == 200 and json.loads(body)["clients"]["US3"]["files_in_depot"] == 2,
                "function: GET /status lists US3's depot files")
        for worker in ("status-checker", "file-transformer", "daily-checker"):
            code, _ = harness.http_get(p.ports[worker], "/_/health")
            t.check(code == 200, f"function: {worker} /_/health 200")
        check_confinement(t, p, "daily-checker")
    finally:
        driver.stop = True


def run_mode(t, podman, workdir, name, base_env, body):
    with Sshd() as server:
        os.makedirs(server.path("inbox"))
        os.makedirs(server.path("depot"))
        secrets = make_secrets(server, os.path.join(workdir, name))
        p = ContainerPipeline(name, podman, server, secrets, base_env)
        try:
            body(t, p)
        except Exception as e:  # noqa: BLE001 - a failed check, with logs
            t.check(False, f"{name}: exception: {e!r}")
        finally:
            if t.failed:
                p.dump_logs()
                print(server.log_tail(), file=sys.stderr)
            p.stop()


def main():
    t = harness.TestRun("test_images")
    workdir = tempfile.mkdtemp(prefix="dx-container-")
    try:
        podman = pm.Podman(workdir)
        if os.environ.get("DX_CONTAINER_PREP"):
            rc, waited, log = pm.wait_prepared(os.environ["DX_CONTAINER_PREP"], PREP_TIMEOUT)
            print(log, file=sys.stderr, flush=True)
            figure(f"waited {waited:.0f} s for the background preparation (exit {rc})")
            t.check(rc == 0, f"background preparation (tests/container/podman.py started by "
                             f"scripts/test) exited {rc}; its log is above")
        started = time.time()
        pm.make_bases(podman, workdir)
        figure(f"base images ready in {time.time() - started:.0f} s")
        started = time.time()
        times = pm.build_images(podman, workdir)
        figure(f"three images built in {time.time() - started:.0f} s "
               f"({', '.join(f'{w} {s:.0f} s' for w, s in times.items())})")
        for worker in pm.WORKERS:
            os.makedirs(os.path.join(workdir, worker))
            check_image(t, podman, worker, os.path.join(workdir, worker))
        started = time.time()
        run_mode(t, podman, workdir, "service", lambda w: {
            "TZ": "UTC", "LOG_LEVEL": "info", "CLIENT_PATTERN": "^US[0-9]+$",
            "EVENT_ENCODING": "protobuf", "SFTP_KEY_FILE": f"{SECRETS}/sftp-key",
            "SFTP_KNOWN_HOSTS": f"{SECRETS}/sftp-known-hosts", "DROP_MIN_AGE": "30"},
            test_service_mode)
        run_mode(t, podman, workdir, "function", stack_environment, test_function_mode)
        figure(f"both chains through the containers in {time.time() - started:.0f} s")
    except Exception as e:  # noqa: BLE001
        t.check(False, f"exception: {e!r}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
