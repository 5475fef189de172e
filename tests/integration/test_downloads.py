"""status-checker's downloads, authentication and per-run cells (issue 14).

Real servers: nats-server (JetStream), the workers, sshd for the sftp://
depot, headless Chromium for the page.

1. file:// depot, STATUS_AUTH_FILE set (a token and a user:password):
   GET /, /status and /files/... answer 401 with WWW-Authenticate without
   credentials, 200 with the token and with basic; the probes and /metrics
   stay open; POST / is applied without credentials but answers no status.
   The run carries rejects_by_reason, profile_revision and the files links;
   both files download byte for byte; "..", absolute, percent-encoded
   traversal, hidden files, a symlink out of the depot (file and folder) are
   refused; a 48 MB file streams with status-checker's peak RSS growing by
   far less than the file; the secrets show in no log, /status or metric.
2. A second status-checker without STATUS_AUTH_FILE, loaded in Chromium:
   the page shows the rejects by reason and a download link that serves the
   clean file.
3. A bad STATUS_AUTH_FILE (missing, empty, "user:" line): exit 2, one line
   naming the variable, never the file's content.
4. sftp:// depot through a real sshd: the same downloads and refusals.
"""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys

import faultlib
import harness
from harness import SAMPLE_ORDERS

DATE = "2026-11-24"
TOKEN = "tok-9f2c1e7d5b"
USER, PASSWORD = "alice", "pw-s3cr3t-77"
DROP = SAMPLE_ORDERS + (
    "A-4,2026-02-31,C4,dan@example.com,SKU-4,Cup,1,3.00,EUR,delivered\n"
    "A-5,2026-11-24,C5,eve@example.com,SKU-5,Jar,,3.00,EUR,delivered\n"
    "A-6,2026-13-01,C6,fay@example.com,SKU-6,Lid,1,3.00,EUR,delivered\n")
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def request(port, path, headers=None, method="GET", body=None):
    """Sends path exactly as given (no normalisation): (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def write_auth_file(workdir):
    path = os.path.join(workdir, "status-auth")
    with open(path, "w") as f:
        f.write(f"# who may read the status\n{TOKEN}\n\n{USER}:{PASSWORD}\r\n")
    os.chmod(path, 0o600)
    return path


def run_once(p, t, headers):
    p.drop("US1", "input.csv", DROP)
    c = p.client()
    try:
        c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "US1"}))
    finally:
        c.close()
    port = p.ports["status-checker"]

    def done():
        code, _, body = request(port, "/status", headers)
        if code != 200:
            return None
        st = json.loads(body)
        return st if st.get("runs") else None
    st = harness.wait_until(done, timeout=60, what="US1's run in /status")
    return st["runs"][0]


def check_run(t, run):
    t.check(run.get("rejects_by_reason") ==
            {"invalid_date": 2, "missing_quantity": 1},
            f"the run's rejects_by_reason counts each reason ({run.get('rejects_by_reason')})")
    t.check(run.get("rows_rejected") == 3, f"3 rows rejected ({run.get('rows_rejected')})")
    t.check("profile_revision" in run, "the run names its profile_revision")
    files = run.get("files") or {}
    t.check(files.get("clean") == "/files/" + run["output"]
            and files.get("rejects") == "/files/" + run["rejects"],
            f"the run links its clean and rejects files ({files})")
    return files


def check_downloads(p, t, run, files, headers, what):
    port = p.ports["status-checker"]
    for kind, rel in (("clean", run["output"]), ("rejects", run["rejects"])):
        code, h, body = request(port, files[kind], headers)
        with open(os.path.join(p.depot, rel), "rb") as f:
            want = f.read()
        t.check(code == 200 and body == want and len(body) > 0,
                f"{what}: GET {files[kind]} gives the depot's bytes ({code}, {len(body)} bytes, "
                f"want {len(want)})")
        t.check(h.get("content-type", "").startswith("text/csv"),
                f"{what}: {kind} is text/csv ({h.get('content-type')})")
        name = os.path.basename(rel)
        t.check(h.get("content-disposition") == f'attachment; filename="{name}"',
                f"{what}: {kind} is an attachment named {name} ({h.get('content-disposition')})")
    os.makedirs(os.path.join(p.depot, "US1", DATE), exist_ok=True)
    with open(os.path.join(p.depot, "US1", DATE, ".input.csv.tmp-1"), "w") as f:
        f.write("partial\n")
    refused = {
        "/files/../etc/passwd": 400,
        "/files/US1/../../etc/passwd": 400,
        "/files//etc/passwd": 400,
        "/files/%2e%2e/%2e%2e/etc/passwd": 400,
        "/files/US1/%2E%2E/%2E%2E/%2E%2E/etc/passwd": 400,
        "/files/US1%2f..%2f..%2fetc%2fpasswd": 400,
        f"/files/US1/{DATE}/.input.csv.tmp-1": 400,
        "/files/US1/./x.csv": 400,
        "/files/": 400,
        f"/files/US1/{DATE}/nothing.csv": 404,
        "/files/US1": 404,
    }
    for path, want in refused.items():
        code, _, body = request(port, path, headers)
        t.check(code == want and b"root:" not in body,
                f"{what}: GET {path} answers {want} (got {code})")
    _, _, metrics = request(port, "/metrics")
    t.check(b'dx_http_requests_total{code="400"}' in metrics
            and b'dx_http_requests_total{code="404"}' in metrics,
            f"{what}: dx_http_requests_total counts the 400 and 404 answers")


def check_symlinks(p, t, headers):
    port = p.ports["status-checker"]
    outside = os.path.join(p.workdir, "outside")
    os.makedirs(outside, exist_ok=True)
    with open(os.path.join(outside, "secret.csv"), "w") as f:
        f.write("not,for,download\n")
    os.symlink(os.path.join(outside, "secret.csv"), os.path.join(p.depot, "US1", "link.csv"))
    os.symlink(outside, os.path.join(p.depot, "US1", "linkdir"))
    for path in ("/files/US1/link.csv", "/files/US1/linkdir/secret.csv"):
        code, _, body = request(port, path, headers)
        t.check(code == 404 and b"not,for" not in body,
                f"GET {path} (a symlink out of the depot) answers 404 (got {code})")


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def check_big_download(p, t, headers, size_mb):
    """A big file streams: the peak RSS grows by far less than its size."""
    rel = f"US1/{DATE}/big.csv"
    block = (b"x" * 1023 + b"\n") * 1024
    digest = hashlib.sha256()
    with open(os.path.join(p.depot, rel), "wb") as f:
        for _ in range(size_mb):
            f.write(block)
            digest.update(block)
    pid = p.workers["status-checker"].pid
    before = vm_hwm_kb(pid)
    conn = http.client.HTTPConnection("127.0.0.1", p.ports["status-checker"], timeout=120)
    got = hashlib.sha256()
    n = 0
    try:
        conn.request("GET", "/files/" + rel, headers=headers)
        r = conn.getresponse()
        while True:
            chunk = r.read(1 << 16)
            if not chunk:
                break
            got.update(chunk)
            n += len(chunk)
    finally:
        conn.close()
    after = vm_hwm_kb(pid)
    t.check(n == size_mb << 20 and got.digest() == digest.digest(),
            f"the {size_mb} MB file downloads whole ({n} bytes)")
    growth_mb = (after - before) / 1024
    print(f"figure: {size_mb} MB download: status-checker peak RSS {before} -> {after} kB",
          flush=True)
    # ASan's quarantine keeps freed blocks resident (256 MB by default): the
    # normal build checks the bound (as test_clean_budget does).
    if harness.built_with_asan(harness.binary("status-checker")):
        print(f"not checked under ASan: the peak RSS of the {size_mb} MB download", flush=True)
    else:
        t.check(growth_mb < size_mb / 4,
                f"peak RSS grows by {growth_mb:.1f} MB for a {size_mb} MB download (bounded)")


def check_auth(p, t, auth_file):
    port = p.ports["status-checker"]
    for path in ("/", "/status", "/files/US1/x.csv"):
        code, h, body = request(port, path)
        t.check(code == 401 and h.get("www-authenticate", "").startswith("Basic realm="),
                f"GET {path} without credentials: 401 with WWW-Authenticate ({code})")
        t.check(b'"clients"' not in body and b"US1" not in body,
                f"GET {path} without credentials shows no status")
    wrong = (
        {"Authorization": "Bearer tok-wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": "Basic " + base64.b64encode(f"{USER}:nope".encode()).decode()},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"{USER}:{PASSWORD}"},
    )
    for h in wrong:
        code, _, _ = request(port, "/status", h)
        t.check(code == 401, f"GET /status with a wrong credential: 401 ({code})")
    for name, h in (("token", BEARER), ("basic", BASIC)):
        for path in ("/", "/status"):
            code, _, _ = request(port, path, h)
            t.check(code == 200, f"GET {path} with the {name}: 200 ({code})")
    for path in ("/_/health", "/_/ready", "/metrics"):
        code, _, _ = request(port, path)
        t.check(code == 200, f"GET {path} stays open: 200 ({code})")
    ready = {"event_id": "ev-post", "client_id": "US9", "order_date": DATE,
             "source": "US9/in.csv", "output": "US9/2026-11-24/in.csv",
             "rejects": "US9/2026-11-24/in.rejects.csv", "sha256": "ab"}
    code, _, body = request(port, "/", {"Content-Type": "application/json"}, "POST",
                            json.dumps(ready))
    t.check(code == 200 and body == b'{"applied":true}',
            f"POST / without credentials is applied, answering no status ({code} {body[:80]!r})")
    code, _, body = request(port, "/status", BEARER)
    t.check(code == 200 and "US9" in json.loads(body)["clients"], "the POSTed run is in /status")
    _, _, metrics = request(port, "/metrics")
    t.check(b'dx_http_requests_total{code="401"}' in metrics,
            "dx_http_requests_total counts the 401 answers")
    leaks = p.secret_leaks(TOKEN) + p.secret_leaks(PASSWORD)
    code, _, body = request(port, "/status", BEARER)
    if TOKEN.encode() in body or PASSWORD.encode() in body:
        leaks.append("/status (authenticated)")
    t.check(leaks == [], f"the credentials show nowhere ({leaks})")


def check_page(p, t, run):
    """A status-checker without STATUS_AUTH_FILE, loaded in Chromium."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import test_page_browser as page
    p.start_replica("status-checker", "status-open", STATUS_AUTH_FILE="", SUBSCRIBE="0")
    port = p.ports["status-open"]
    harness.wait_until(lambda: request(port, "/status")[0] == 200
                       and json.loads(request(port, "/status")[2]).get("runs"),
                       timeout=60, what="the open replica's runs")
    text, _, rc = page.render(port, p.workdir)
    t.check(rc == 0, f"chromium exits 0 (got {rc})")
    dom = page.parse_dom(text)
    row = next((r for r in dom.find_all("tr", cls="run", data_client_id="US1")), None)
    t.check(row is not None, "the page has US1's run")
    if row is None:
        return
    reasons = {li.attrs.get("data-reason"): li.text() for li in row.find_all("li",
                                                                             cls="reject-reason")}
    t.check(set(reasons) == {"invalid_date", "missing_quantity"}
            and reasons["invalid_date"].endswith("2"),
            f"the run shows its rejects by reason ({reasons})")
    rev = row.find("td", cls="revision")
    t.check(rev is not None, "the run shows its profile revision")
    link = row.find("a", cls="clean")
    href = link.attrs.get("href") if link else None
    t.check(href == "files/" + run["output"], f"the clean file's download link ({href})")
    if href:
        code, h, body = request(port, "/" + href)
        with open(os.path.join(p.depot, run["output"]), "rb") as f:
            t.check(code == 200 and body == f.read(),
                    f"the page's download link serves the clean file ({code})")


def check_bad_auth_files(p, t):
    cases = {"missing": None, "empty": "", "comments only": "# nothing\n\n",
             "empty password": f"{TOKEN}\n{USER}:\n", "empty user": ":pw-xyz\n",
             "control character": f"tok\x01{TOKEN}\n"}
    for what, content in cases.items():
        path = os.path.join(p.workdir, f"auth-{what.replace(' ', '-')}")
        if content is not None:
            with open(path, "w") as f:
                f.write(content)
        res = subprocess.run(harness.worker_command("status-checker"),
                             env=p.env("status-checker", STATUS_AUTH_FILE=path, PORT="0"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        err = res.stderr.decode("utf-8", "replace").strip()
        t.check(res.returncode == 2 and "STATUS_AUTH_FILE" in err and len(err.splitlines()) == 1
                and TOKEN not in err and USER not in err and "pw-xyz" not in err,
                f"STATUS_AUTH_FILE {what}: exit 2 with one line naming it ({res.returncode}: "
                f"{err[:200]})")


def file_depot(t):
    with harness.pipeline_run(t, "downloads") as p:
        auth_file = write_auth_file(p.workdir)
        p.start(STATUS_AUTH_FILE=auth_file)
        run = run_once(p, t, BEARER)
        files = check_run(t, run)
        check_auth(p, t, auth_file)
        check_downloads(p, t, run, files, BASIC, "file://")
        check_symlinks(p, t, BEARER)
        check_big_download(p, t, BEARER, 48)
        check_page(p, t, run)
        check_bad_auth_files(p, t)


def sftp_depot(t):
    with faultlib.sftp_pipeline(t, "downloads-sftp") as (p, server):
        auth_file = write_auth_file(p.workdir)
        p.start(STATUS_AUTH_FILE=auth_file)
        run = run_once(p, t, BEARER)
        files = check_run(t, run)
        check_downloads(p, t, run, files, BEARER, "sftp://")
        check_big_download(p, t, BASIC, 16)


def main():
    t = harness.TestRun("test_downloads")
    file_depot(t)
    sftp_depot(t)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
