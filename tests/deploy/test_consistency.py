#!/usr/bin/env python3
"""Consistency of what ships for deployment, checked offline.

Renders every kustomize overlay with `kubectl kustomize`, reads stack.yml
(OpenFaaS stack format), the Dockerfile and the secrets script's dry-run
output, and checks that they agree with each other and with the workers:

- stack.yml has the structure faas-cli reads (version 1.0, provider
  openfaas, functions with lang/handler/image, string maps, quantities);
- the `topic` annotations and the nats-connector's `topics` match the NATS
  subjects the workers use, the cron schedule is the documented one;
- every environment name in stack.yml and in the standalone ConfigMap is one
  the workers document, with the same values in both deployments;
- NATS_URL, INBOX_URL and DEPOT_URL point at Services that the overlays
  render, on the right ports and folders;
- every secret, ConfigMap, PVC and volume a pod refers to exists in the
  rendered output, or is made by deploy/k8s/create-secrets.sh, or is one of
  the few documented as made by the OpenFaaS installation;
- Services select pods; NetworkPolicies let only the workers reach NATS and
  SFTP; every pod is non-root, read-only, without capabilities, with
  seccomp RuntimeDefault (the SFTP server is the one documented exception);
- the Dockerfile is multi-stage, with a slim non-root runtime.

Needs: kubectl (kustomize), PyYAML, ssh-keygen.  Usage:
    test_consistency.py --source-dir DIR [--kubectl PATH]
Prints one line per check and 'N passed, N failed'; exit 1 on any failure.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

import yaml

# --- What the workers define (issue 2 / issue 4 / issue 5 and the lead's
# configuration list).  Names found in the workers' own sources are accepted
# too, so a variable added there does not need an edit here.
SUBJECTS = {"orders.order-date", "orders.file-ready", "orders.file-failed"}
FUNCTION_TOPICS = {
    "daily-checker": {"cron-function"},
    "file-transformer": {"orders.order-date"},
    "status-checker": {"orders.file-ready", "orders.file-failed"},
}
DAILY_SCHEDULE = "0 8 * * *"
# The names the Dockerfile starts from, in full: under podman a short name
# resolves to localhost/... (tests/container/podman.py makes these two).
FULL_BASE_IMAGES = ("docker.io/library/debian:bookworm", "docker.io/library/debian:bookworm-slim")
# Settings only daily-checker's SCHEDULE service reads: set anywhere else
# (--once, function mode) they do nothing.
SCHEDULE_ONLY_ENV = {"SCHEDULE", "CATCHUP_MAX_DAYS"}
# Who may reach the workers' HTTP port in the standalone overlay: these
# namespaces, by name, and nobody else.
WORKER_HTTP_NAMESPACES = {"monitoring", "ingress-nginx"}
PART_OF = ("app.kubernetes.io/part-of", "dataretailx")
# The workers, each a Prometheus job of its name (deploy/monitoring).
WORKERS = ("daily-checker", "file-transformer", "status-checker")
DOCUMENTED_ENV = {
    "NATS_URL", "NATS_CREDS_FILE", "INBOX_URL", "DEPOT_URL", "SFTP_KEY_FILE",
    "SFTP_PASSWORD_FILE", "SFTP_KNOWN_HOSTS", "SFTP_INSECURE_SKIP_HOST_KEY",
    "PORT", "HTTP_ADDR", "TZ", "LOG_LEVEL", "CLIENT_PATTERN", "EVENT_ENCODING",
    "SUBSCRIBE", "SCHEDULE", "CATCHUP_MAX_DAYS", "DROP_MIN_AGE", "MAX_DELIVER",
}
OPENFAAS_SECRET_DIR = "/var/openfaas/secrets"
OPENFAAS_FN_NAMESPACE = "openfaas-fn"
# Made by the OpenFaaS installation, not by us: (namespace, secret).
EXTERNAL_SECRETS = {("openfaas", "basic-auth"): "created by the OpenFaaS installation"}
# The only pod templates allowed to relax the restricted profile, with the
# annotation that says why.
SECURITY_EXCEPTIONS = {("dataretailx", "Deployment", "sftp")}
EXCEPTION_ANNOTATION = "dataretailx.io/security-exception"

# faas-cli's stack schema (stack/schema.go): the keys a function may carry.
STACK_FUNCTION_KEYS = {
    "lang", "handler", "image", "registry_auth", "fprocess", "environment",
    "secrets", "skip_build", "constraints", "environment_file", "labels",
    "limits", "requests", "readonly_root_filesystem", "build_options",
    "build_args", "build_secrets", "annotations", "namespace", "platforms",
}
STACK_TOP_KEYS = {"version", "provider", "functions", "configuration"}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""))
        return ok


def envsubst(text):
    """faas-cli substitutes ${VAR} and ${VAR:-default} in stack.yml."""
    def repl(m):
        name, default = m.group(1), m.group(3)
        return os.environ.get(name) or (default or "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", repl, text)


def render(kubectl, path):
    out = subprocess.run([kubectl, "kustomize", path], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def ns_of(obj, default="default"):
    return obj.get("metadata", {}).get("namespace", default)


def pod_templates(objs):
    """(obj, pod metadata, pod spec) for every workload."""
    for o in objs:
        kind = o["kind"]
        spec = o.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            t = spec["template"]
        elif kind == "CronJob":
            t = spec["jobTemplate"]["spec"]["template"]
        elif kind == "Pod":
            t = o
        else:
            continue
        yield o, t.get("metadata", {}), t["spec"]


def selector_matches(selector, labels):
    """LabelSelector (matchLabels + matchExpressions) against a label map."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def services_by_host(objs):
    """Every DNS name of every rendered Service -> (service, namespace)."""
    out = {}
    for o in objs:
        if o["kind"] != "Service":
            continue
        n, ns = o["metadata"]["name"], ns_of(o)
        for host in (f"{n}.{ns}.svc.cluster.local", f"{n}.{ns}.svc", f"{n}.{ns}"):
            out[host] = o
    return out


def service_ports(svc):
    return {p["port"] for p in svc["spec"].get("ports", [])}


def parse_cron(expr):
    fields = expr.split()
    if len(fields) != 5:
        return False
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for f, (lo, hi) in zip(fields, ranges):
        for part in f.split(","):
            base = part.split("/")[0]
            if base == "*":
                continue
            for v in base.split("-"):
                if not v.isdigit() or not lo <= int(v) <= hi:
                    return False
    return True


def worker_env_names_from_source(source_dir):
    names = set()
    pat = re.compile(r'(?:get_string|get_int|get_bool|getenv|secure_getenv)\(\s*"([A-Z][A-Z0-9_]*)"')
    for root, _, files in os.walk(os.path.join(source_dir, "workers")):
        for f in files:
            if f.endswith((".c", ".h")):
                with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                    names.update(pat.findall(fh.read()))
    return names


def worker_subjects_from_source(source_dir):
    subjects = set()
    # A subject literal: "orders.<word>[-<word>]" or the wildcard "orders.>"
    # (file names such as "orders.tmp.csv" are not subjects).
    pat = re.compile(r'"(orders\.(?:[a-z]+(?:-[a-z]+)*|>))"')
    for top in ("workers", "proto"):
        for root, _, files in os.walk(os.path.join(source_dir, top)):
            for f in files:
                if f.endswith((".c", ".h", ".proto")):
                    with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                        subjects.update(pat.findall(fh.read()))
    return subjects


def secrets_from_script(source_dir, target, tmp):
    """Run create-secrets.sh --dry-run with throwaway keys; {(ns, name): keys}."""
    keys = {}
    for name in ("host", "user"):
        path = os.path.join(tmp, f"{target}-{name}")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", path], check=True)
        keys[name] = path
    script = os.path.join(source_dir, "deploy", "k8s", "create-secrets.sh")
    out = subprocess.run(
        [script, "--target", target, "--sftp-host-key", keys["host"], "--sftp-user-key", keys["user"], "--dry-run"],
        check=True, capture_output=True, text=True,
    ).stdout
    made = {}
    docs = [d for d in yaml.safe_load_all(out) if d]
    for d in docs:
        made[(ns_of(d), d["metadata"]["name"])] = d
    return made


# --------------------------------------------------------------------------
def dockerfile_copy_sources(source_dir):
    """The top-level names the Dockerfile's COPY lines (not --from) take
    from the build context."""
    with open(os.path.join(source_dir, "Dockerfile"), encoding="utf-8") as fh:
        lines = fh.read().replace("\\\n", " ").splitlines()
    out = set()
    for l in (l.strip() for l in lines):
        words = l.split()
        if words and words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            out |= {w.rstrip("/").split("/")[0] for w in words[1:-1] if not w.startswith("--")}
    return out


def check_stack(c, stack, source_dir):
    c.check(set(stack) <= STACK_TOP_KEYS, "stack.yml: only faas-cli top-level keys", f"{sorted(set(stack) - STACK_TOP_KEYS)}")
    c.check(str(stack.get("version")) == "1.0", "stack.yml: version 1.0", repr(stack.get("version")))
    prov = stack.get("provider") or {}
    c.check(prov.get("name") == "openfaas", "stack.yml: provider.name is openfaas")
    gw = urllib.parse.urlparse(str(prov.get("gateway", "")))
    c.check(gw.scheme in ("http", "https") and gw.netloc, "stack.yml: provider.gateway is a URL", prov.get("gateway"))
    fns = stack.get("functions") or {}
    c.check(set(fns) == set(FUNCTION_TOPICS), "stack.yml: the three worker functions", f"{sorted(fns)}")
    tmpl = os.path.join(source_dir, "template", "dockerfile", "template.yml")
    c.check(os.path.isfile(tmpl), "template/dockerfile/ is in the repository (faas-cli build works offline)")
    for name, fn in fns.items():
        p = f"stack.yml: {name}"
        c.check(DNS_LABEL.match(name) is not None, f"{p}: name is a DNS label")
        c.check(set(fn) <= STACK_FUNCTION_KEYS, f"{p}: only faas-cli function keys", f"{sorted(set(fn) - STACK_FUNCTION_KEYS)}")
        c.check(fn.get("lang") == "dockerfile", f"{p}: lang dockerfile")
        handler = os.path.normpath(os.path.join(source_dir, str(fn.get("handler", ""))))
        c.check(os.path.isfile(os.path.join(handler, "Dockerfile")), f"{p}: handler folder holds the Dockerfile", handler)
        # faas-cli copies the handler folder (links followed) into
        # ./build/<fn>/ and builds there: it must hold what the Dockerfile
        # copies and nothing large (never the repository root, whose build/
        # is meson's and whose .git and build-asan/ would be copied).
        entries = set(os.listdir(handler)) if os.path.isdir(handler) else set()
        needed = dockerfile_copy_sources(source_dir) | {"Dockerfile", ".dockerignore"}
        c.check(needed <= entries, f"{p}: handler folder holds what the Dockerfile copies", f"{sorted(needed - entries)}")
        c.check(not entries & {".git", "build", "deploy", "scripts", "docs"}, f"{p}: handler folder holds nothing else",
                f"{sorted(entries - needed)}")
        image = str(fn.get("image", ""))
        c.check(re.match(r"^[a-z0-9.\-/:]+:[A-Za-z0-9_.-]+$", image) is not None, f"{p}: image has a repository and a tag", image)
        c.check(image.rsplit(":", 1)[0].rsplit("/", 1)[-1] == name, f"{p}: image is named after the function", image)
        c.check((fn.get("build_args") or {}).get("WORKER") == name, f"{p}: build_args WORKER selects the worker")
        c.check(fn.get("namespace", OPENFAAS_FN_NAMESPACE) == OPENFAAS_FN_NAMESPACE, f"{p}: namespace {OPENFAAS_FN_NAMESPACE}")
        for field in ("environment", "labels", "annotations", "build_args"):
            m = fn.get(field) or {}
            bad = [k for k, v in m.items() if not isinstance(k, str) or not isinstance(v, str)]
            c.check(isinstance(m, dict) and not bad, f"{p}: {field} is a map of strings", f"{bad}")
        bad = [v for v in (fn.get("labels") or {}).values() if not LABEL_VALUE.match(str(v))]
        c.check(not bad, f"{p}: label values are valid Kubernetes label values", f"{bad}")
        c.check(isinstance(fn.get("secrets"), list) and all(isinstance(s, str) for s in fn["secrets"]), f"{p}: secrets is a list of names")
        c.check(fn.get("readonly_root_filesystem") is True, f"{p}: readonly_root_filesystem")
        for res in ("requests", "limits"):
            r = fn.get(res) or {}
            ok = set(r) and set(r) <= {"cpu", "memory"} and all(QUANTITY.match(str(v)) for v in r.values())
            c.check(ok, f"{p}: {res} are cpu/memory quantities", f"{r}")
        labels = fn.get("labels") or {}
        lo, hi = labels.get("com.openfaas.scale.min"), labels.get("com.openfaas.scale.max")
        c.check(lo is not None and hi is not None and lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi),
                f"{p}: scaling labels com.openfaas.scale.min <= max", f"{lo}..{hi}")
        ann = fn.get("annotations") or {}
        c.check(ann.get("com.openfaas.health.http.path") == "/_/health", f"{p}: health path /_/health")
        c.check(ann.get("com.openfaas.ready.http.path") == "/_/ready", f"{p}: ready path /_/ready")
        c.check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == (fn.get("environment") or {}).get("PORT", "8080"),
                f"{p}: Prometheus scrape annotations on the worker's PORT")
    c.check(fns.get("status-checker", {}).get("labels", {}).get("com.openfaas.scale.max") == "1",
            "stack.yml: status-checker has one replica (its status is kept in the process)")


def check_topics(c, stack, openfaas_objs, source_dir):
    fns = stack.get("functions") or {}
    topic_of = {}
    for name, fn in fns.items():
        topics = {t for t in str((fn.get("annotations") or {}).get("topic", "")).split(",") if t}
        topic_of[name] = topics
        c.check(topics == FUNCTION_TOPICS.get(name), f"stack.yml: {name} topic annotation", f"{sorted(topics)}")
    sched = (fns.get("daily-checker", {}).get("annotations") or {}).get("schedule")
    c.check(sched == DAILY_SCHEDULE and parse_cron(sched), "stack.yml: daily-checker schedule", repr(sched))

    used = worker_subjects_from_source(source_dir)
    # Documented: the subjects table of docs/events.md (orders.drop-check and
    # orders.client-state too, which no connector delivers in function mode).
    with open(os.path.join(source_dir, "docs", "events.md"), encoding="utf-8") as f:
        documented = set(re.findall(r"^\| `(orders\.[a-z-]+)` \|", f.read(), re.M))
    c.check(SUBJECTS <= documented and used <= documented | {"orders.>"},
            "workers use only the subjects docs/events.md documents", f"{sorted(used - documented)}")
    nats_topics = set().union(*topic_of.values()) - {"cron-function"}
    c.check(nats_topics == SUBJECTS, "stack.yml topics cover exactly the worker subjects", f"{sorted(nats_topics)}")

    conn = [o for o in openfaas_objs if o["kind"] == "Deployment" and "nats-connector" in o["metadata"]["name"]]
    if not c.check(len(conn) == 1, "openfaas overlay: one nats-connector Deployment"):
        return
    dep = conn[0]
    c.check(dep["spec"].get("replicas", 1) >= 1, "nats-connector: at least one replica")
    ctr = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
    delim = env.get("topic_delimiter") or ","
    topics = {t for t in (env.get("topics") or "").split(delim) if t}
    c.check(topics == nats_topics, "nats-connector: topics == the functions' NATS topics", f"{sorted(topics)}")
    c.check(env.get("asynchronous_invocation") == "false", "nats-connector: asynchronous_invocation explicitly false")
    c.check(GO_DURATION.match(env.get("upstream_timeout") or "") is not None, "nats-connector: upstream_timeout is a Go duration")
    c.check(GO_DURATION.match(env.get("rebuild_interval") or "") is not None, "nats-connector: rebuild_interval is a Go duration")
    gw = urllib.parse.urlparse(env.get("gateway_url") or "")
    c.check(gw.scheme == "http" and gw.hostname, "nats-connector: gateway_url set", env.get("gateway_url"))
    host = env.get("broker_host") or ""
    c.check(host and "://" not in host and ":" not in host, "nats-connector: broker_host is a host only (port 4222 is fixed)", host)
    svc = services_by_host(openfaas_objs).get(host)
    c.check(svc is not None and 4222 in service_ports(svc), "nats-connector: broker_host is the rendered NATS Service on 4222", host)
    if env.get("basic_auth") == "true":
        mounts = {m["mountPath"].rstrip("/") for m in ctr.get("volumeMounts", [])}
        c.check((env.get("secret_mount_path") or "").rstrip("/") in mounts, "nats-connector: basic-auth mounted at secret_mount_path")

    cron = [o for o in openfaas_objs if o["kind"] == "Deployment" and "cron-connector" in o["metadata"]["name"]]
    if c.check(len(cron) == 1, "openfaas overlay: one cron-connector Deployment"):
        cenv = {e["name"]: e.get("value") for e in cron[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        c.check(cenv.get("gateway_url") == env.get("gateway_url"), "cron-connector: same gateway_url as the nats-connector")
        c.check(cron[0]["spec"].get("replicas", 1) == 1, "cron-connector: one replica (each replica would invoke)")


def check_env(c, stack, standalone_objs, source_dir):
    allowed = DOCUMENTED_ENV | worker_env_names_from_source(source_dir)
    fns = stack.get("functions") or {}
    for name, fn in fns.items():
        env = fn.get("environment") or {}
        unknown = sorted(set(env) - allowed)
        c.check(not unknown, f"stack.yml: {name} environment names are documented", f"{unknown}")
        c.check(env.get("SUBSCRIBE") == "0", f"stack.yml: {name} SUBSCRIBE=0 (connectors deliver)")
        c.check(env.get("HTTP_ADDR") == "0.0.0.0", f"stack.yml: {name} HTTP_ADDR=0.0.0.0")
        c.check(env.get("PORT", "8080") == "8080", f"stack.yml: {name} PORT 8080 (the port OpenFaaS calls)")
        idle = sorted(set(env) & SCHEDULE_ONLY_ENV)
        c.check(not idle, f"stack.yml: {name} sets nothing only the SCHEDULE service reads (the cron-connector schedules)", f"{idle}")
        for var in ("SFTP_KEY_FILE", "SFTP_KNOWN_HOSTS", "NATS_CREDS_FILE"):
            if var in env:
                path = env[var]
                secret = path[len(OPENFAAS_SECRET_DIR) + 1:] if path.startswith(OPENFAAS_SECRET_DIR + "/") else None
                c.check(secret in (fn.get("secrets") or []), f"stack.yml: {name} {var} is a mounted secret", path)

    cms = {o["metadata"]["name"]: o for o in standalone_objs if o["kind"] == "ConfigMap"}
    cm = cms.get("dataretailx-config", {}).get("data", {})
    c.check(bool(cm), "standalone: ConfigMap dataretailx-config")
    c.check(not sorted(set(cm) - allowed), "standalone: ConfigMap names are documented", f"{sorted(set(cm) - allowed)}")
    c.check(cm.get("HTTP_ADDR") == "0.0.0.0", "standalone: HTTP_ADDR=0.0.0.0")
    # Same values in both deployments for what they share.
    for name, fn in fns.items():
        env = fn.get("environment") or {}
        diff = {k: (env[k], cm[k]) for k in set(env) & set(cm) if env[k] != cm[k]}
        c.check(not diff, f"stack.yml {name} and the standalone ConfigMap agree", f"{diff}")
    for o, meta, spec in pod_templates(standalone_objs):
        for ctr in spec.get("containers", []):
            names = {e["name"] for e in ctr.get("env", [])}
            unknown = sorted(names - allowed)
            c.check(not unknown, f"standalone: {o['metadata']['name']} env names are documented", f"{unknown}")


def check_urls(c, env, objs, where, sftp_user_dirs):
    hosts = services_by_host(objs)
    nats = urllib.parse.urlparse(env.get("NATS_URL", ""))
    if "NATS_URL" in env:
        svc = hosts.get(nats.hostname or "")
        c.check(nats.scheme == "nats" and svc is not None and (nats.port or 4222) in service_ports(svc),
                f"{where}: NATS_URL is the rendered NATS Service", env["NATS_URL"])
    for var, folder in (("INBOX_URL", "inbox"), ("DEPOT_URL", "depot")):
        if var not in env:
            continue
        u = urllib.parse.urlparse(env[var])
        svc = hosts.get(u.hostname or "")
        c.check(u.scheme == "sftp" and svc is not None and (u.port or 22) in service_ports(svc),
                f"{where}: {var} is the rendered SFTP Service", env[var])
        dirs = sftp_user_dirs.get(u.username or "")
        c.check(dirs is not None and u.path.strip("/") == folder and folder in dirs,
                f"{where}: {var} is the {folder} folder of an SFTP account", f"{u.username}:{u.path}")


def sftp_accounts(objs):
    """users.conf of the SFTP server -> {user: set of top-level dirs}."""
    out = {}
    for o in objs:
        if o["kind"] == "ConfigMap" and "users.conf" in o.get("data", {}):
            for line in o["data"]["users.conf"].splitlines():
                if line.strip() and not line.startswith("#"):
                    parts = line.split(":")
                    dirs = parts[4].split(",") if len(parts) > 4 else []
                    out[parts[0]] = {d.split("/")[0] for d in dirs} | set(dirs)
    return out


def check_references(c, objs, where, script_secrets, stack=None):
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], {})[(ns_of(o), o["metadata"]["name"])] = o
    secrets = dict(by_kind.get("Secret", {}))
    secrets.update(script_secrets)
    configmaps = by_kind.get("ConfigMap", {})
    pvcs = by_kind.get("PersistentVolumeClaim", {})

    def secret_exists(ns, name, key=None):
        if (ns, name) in EXTERNAL_SECRETS:
            return True
        s = secrets.get((ns, name))
        return s is not None and (key is None or key in (s.get("data") or {}) or key in (s.get("stringData") or {}))

    for o, meta, spec in pod_templates(objs):
        ns, oname = ns_of(o), f"{o['kind']}/{o['metadata']['name']}"
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        claim_templates = {t["metadata"]["name"] for t in o.get("spec", {}).get("volumeClaimTemplates", [])}
        for v in vols.values():
            if "secret" in v:
                s = v["secret"]
                c.check(secret_exists(ns, s["secretName"]) or s.get("optional"),
                        f"{where}: {oname} secret {s['secretName']} exists", "not rendered, not made by create-secrets.sh")
            if "configMap" in v:
                c.check((ns, v["configMap"]["name"]) in configmaps or v["configMap"].get("optional"),
                        f"{where}: {oname} ConfigMap {v['configMap']['name']} exists")
            if "persistentVolumeClaim" in v:
                c.check((ns, v["persistentVolumeClaim"]["claimName"]) in pvcs,
                        f"{where}: {oname} PVC {v['persistentVolumeClaim']['claimName']} exists")
            for src in (v.get("projected") or {}).get("sources", []):
                if "secret" in src:
                    n = src["secret"]["name"]
                    c.check(secret_exists(ns, n) or src["secret"].get("optional"), f"{where}: {oname} projected secret {n} exists")
                if "configMap" in src:
                    c.check((ns, src["configMap"]["name"]) in configmaps, f"{where}: {oname} projected ConfigMap exists")
        for ctr in spec.get("containers", []) + spec.get("initContainers", []):
            for m in ctr.get("volumeMounts", []):
                ok = m["name"] in vols or m["name"] in claim_templates
                c.check(ok, f"{where}: {oname}/{ctr['name']} mount {m['name']} has a volume")
                v = vols.get(m["name"], {})
                if ok and m.get("subPath") and "secret" in v:
                    c.check(secret_exists(ns, v["secret"]["secretName"], m["subPath"]),
                            f"{where}: {oname} subPath {m['subPath']} is a key of secret {v['secret']['secretName']}")
                if ok and m.get("subPath") and "configMap" in v:
                    data = configmaps.get((ns, v["configMap"]["name"]), {}).get("data", {})
                    c.check(m["subPath"] in data, f"{where}: {oname} subPath {m['subPath']} is a key of its ConfigMap")
            for ef in ctr.get("envFrom", []):
                if "configMapRef" in ef:
                    c.check((ns, ef["configMapRef"]["name"]) in configmaps, f"{where}: {oname} envFrom ConfigMap exists")
                if "secretRef" in ef:
                    c.check(secret_exists(ns, ef["secretRef"]["name"]), f"{where}: {oname} envFrom Secret exists")
            for e in ctr.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    c.check(secret_exists(ns, ref["name"], ref["key"]), f"{where}: {oname} env {e['name']} secret key exists")
            names = {p.get("name") for p in ctr.get("ports", [])} | {p["containerPort"] for p in ctr.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = ((ctr.get(probe) or {}).get("httpGet") or (ctr.get(probe) or {}).get("tcpSocket") or {}).get("port")
                if port is not None:
                    c.check(port in names, f"{where}: {oname}/{ctr['name']} {probe} port {port} is declared")
        # Prometheus annotations point at a declared port.
        ann = meta.get("annotations") or {}
        if ann.get("prometheus.io/scrape") == "true":
            ports = {p["containerPort"] for ctr in spec["containers"] for p in ctr.get("ports", [])}
            c.check(int(ann.get("prometheus.io/port", "0")) in ports, f"{where}: {oname} scrape port is a container port")

    # Services select pods and their named target ports exist.
    templates = [(ns_of(o), meta.get("labels") or {}, spec) for o, meta, spec in pod_templates(objs)]
    for (ns, name), svc in by_kind.get("Service", {}).items():
        sel = svc["spec"].get("selector") or {}
        matched = [spec for tns, labels, spec in templates if tns == ns and sel and all(labels.get(k) == v for k, v in sel.items())]
        c.check(bool(matched), f"{where}: Service {name} selects a pod")
        for p in svc["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            declared = {q.get("name") for s in matched for ctr in s["containers"] for q in ctr.get("ports", [])} | \
                       {q["containerPort"] for s in matched for ctr in s["containers"] for q in ctr.get("ports", [])}
            c.check(tp in declared, f"{where}: Service {name} targetPort {tp} is a container port")
    # Deployment/StatefulSet selectors match their own template.
    for o, meta, spec in pod_templates(objs):
        sel = o.get("spec", {}).get("selector")
        if sel is not None and o["kind"] in ("Deployment", "StatefulSet"):
            c.check(selector_matches(sel, meta.get("labels") or {}), f"{where}: {o['kind']}/{o['metadata']['name']} selector matches its pods")


def check_security(c, objs, where):
    for o, meta, spec in pod_templates(objs):
        key = (ns_of(o), o["kind"], o["metadata"]["name"])
        oname = f"{o['kind']}/{o['metadata']['name']}"
        psc = spec.get("securityContext") or {}
        exception = key in SECURITY_EXCEPTIONS
        has_note = EXCEPTION_ANNOTATION in (meta.get("annotations") or {})
        c.check(exception == has_note, f"{where}: {oname} security exception is both allowed and explained" if has_note
                else f"{where}: {oname} has no security exception")
        c.check(spec.get("automountServiceAccountToken") is False, f"{where}: {oname} does not mount an API token")
        for ctr in spec.get("containers", []) + spec.get("initContainers", []):
            sc = ctr.get("securityContext") or {}
            n = f"{where}: {oname}/{ctr['name']}"
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            c.check(seccomp == "RuntimeDefault", f"{n} seccomp RuntimeDefault")
            c.check(sc.get("allowPrivilegeEscalation") is False, f"{n} allowPrivilegeEscalation false")
            c.check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{n} drops ALL capabilities")
            c.check(not sc.get("privileged"), f"{n} not privileged")
            if not exception:
                non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
                uid = sc.get("runAsUser", psc.get("runAsUser"))
                c.check(non_root is True and uid != 0, f"{n} runAsNonRoot")
                c.check(sc.get("readOnlyRootFilesystem") is True, f"{n} readOnlyRootFilesystem")
                c.check(not (sc.get("capabilities") or {}).get("add"), f"{n} adds no capability")
            c.check(bool((ctr.get("resources") or {}).get("limits", {}).get("memory")), f"{n} has a memory limit")
            c.check(":" in ctr["image"] and not ctr["image"].endswith(":latest"), f"{n} image is pinned to a tag", ctr["image"])
            # A short name resolves differently per runtime (podman and
            # CRI-O: localhost/ or a prompt); a full name means one image.
            c.check("." in ctr["image"].split("/")[0] and "/" in ctr["image"], f"{n} image has its full name (registry host)", ctr["image"])


def check_network(c, objs, where, extra_allowed_pods):
    """Only workers (and, for NATS, the nats-connector) reach NATS and SFTP."""
    pols = [o for o in objs if o["kind"] == "NetworkPolicy"]
    c.check(any(p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress")
                for p in pols), f"{where}: default deny of ingress in the namespace")
    # The pods of the rendered output, plus the OpenFaaS function pods that
    # faas-netes will make (labels it sets: faas_function=<name>).
    pods = [(ns_of(o), meta.get("labels") or {}, o["metadata"]["name"]) for o, meta, _ in pod_templates(objs)]
    pods += extra_allowed_pods
    nsl = lambda ns: {"kubernetes.io/metadata.name": ns}
    for target, port, may in (("nats", 4222, {"worker", "nats-connector"}), ("sftp", 22, {"worker"})):
        t_pods = [(ns, l) for ns, l, _ in pods if l.get("app.kubernetes.io/name") == target]
        c.check(bool(t_pods), f"{where}: {target} pods rendered")
        reach = set()
        for p in pols:
            pns = ns_of(p)
            if not any(ns == pns and selector_matches(p["spec"].get("podSelector"), l) for ns, l in t_pods):
                continue
            for rule in p["spec"].get("ingress", []) or []:
                ports = {q.get("port") for q in rule.get("ports", [])}
                if ports and port not in ports:
                    continue
                for peer in rule.get("from", []) or [{}]:
                    for ns, labels, name in pods:
                        ns_ok = selector_matches(peer["namespaceSelector"], nsl(ns)) if "namespaceSelector" in peer else ns == pns
                        pod_ok = selector_matches(peer["podSelector"], labels) if "podSelector" in peer else True
                        if "ipBlock" in peer:
                            reach.add(("<any address>", "ipBlock"))
                        elif ns_ok and pod_ok:
                            reach.add((name, labels.get("app.kubernetes.io/component", "")))
        c.check(bool(reach), f"{where}: someone may reach {target}:{port}")
        bad = sorted(n for n, comp in reach if comp not in may)
        c.check(not bad, f"{where}: only {'/'.join(sorted(may))} pods reach {target}:{port}", f"{bad}")
        return_names = {n for n, _ in reach}
        expected = {n for _, l, n in pods if l.get("app.kubernetes.io/component") == "worker"}
        c.check(expected <= return_names, f"{where}: every worker reaches {target}:{port}", f"{sorted(expected - return_names)}")


def check_standalone(c, objs, stack):
    deps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Deployment"}
    for name in ("file-transformer", "status-checker"):
        d = deps.get(name)
        if not c.check(d is not None, f"standalone: Deployment {name}"):
            continue
        ctr = d["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
        c.check(env.get("SUBSCRIBE") == "1", f"standalone: {name} SUBSCRIBE=1 (consumes JetStream itself)")
        c.check((ctr.get("readinessProbe") or {}).get("httpGet", {}).get("path") == "/_/ready", f"standalone: {name} readiness /_/ready")
        c.check((ctr.get("livenessProbe") or {}).get("httpGet", {}).get("path") == "/_/health", f"standalone: {name} liveness /_/health")
        c.check(ctr["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1] == name, f"standalone: {name} runs its own image", ctr["image"])
        c.check(any(o["kind"] == "Service" and o["metadata"]["name"] == name for o in objs), f"standalone: Service {name}")
    c.check(deps.get("status-checker", {}).get("spec", {}).get("replicas") == 1, "standalone: status-checker has one replica")
    schedule = stack["functions"]["daily-checker"]["annotations"]["schedule"]
    d = deps.get("daily-checker")
    if c.check(d is not None, "standalone: Deployment daily-checker (runs its own SCHEDULE)"):
        ctr = d["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
        c.check(env.get("SCHEDULE") == schedule, "standalone: daily-checker SCHEDULE == stack.yml schedule", f"{env.get('SCHEDULE')}")
        c.check("--once" not in (ctr.get("args") or []) + (ctr.get("command") or []), "standalone: daily-checker is a service, not --once")
        c.check(d["spec"].get("replicas") == 2, "standalone: daily-checker has two replicas (run claims make it safe)")
        c.check((ctr.get("readinessProbe") or {}).get("httpGet", {}).get("path") == "/_/ready", "standalone: daily-checker readiness /_/ready")
        c.check(ctr["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "daily-checker", "standalone: daily-checker runs its own image", ctr["image"])
    c.check(not any(o["kind"] == "CronJob" for o in objs), "standalone: no CronJob beside the daily-checker Deployment")
    check_pdbs(c, objs, "standalone")
    check_worker_http(c, objs, "standalone")


def check_standalone_cronjob(c, objs, stack):
    """The CronJob alternative: daily-checker --once at the same time."""
    where = "standalone-cronjob"
    c.check(not any(o["kind"] == "Deployment" and o["metadata"]["name"] == "daily-checker" for o in objs),
            f"{where}: the daily-checker Deployment is replaced, not doubled")
    cj = [o for o in objs if o["kind"] == "CronJob" and o["metadata"]["name"] == "daily-checker"]
    if c.check(len(cj) == 1, f"{where}: CronJob daily-checker"):
        spec = cj[0]["spec"]
        ctr = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        c.check("--once" in (ctr.get("args") or []) + (ctr.get("command") or []), f"{where}: CronJob runs daily-checker --once")
        c.check(spec["schedule"] == stack["functions"]["daily-checker"]["annotations"]["schedule"], f"{where}: CronJob schedule == stack.yml schedule")
        cm = next((o["data"] for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "dataretailx-config"), {})
        c.check(spec.get("timeZone") == cm.get("TZ"), f"{where}: CronJob timeZone == the workers' TZ", f"{spec.get('timeZone')} vs {cm.get('TZ')}")
        c.check(spec.get("concurrencyPolicy") == "Forbid", f"{where}: CronJob never runs twice at once")
        c.check(ctr["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "daily-checker", f"{where}: CronJob runs the daily-checker image")
        idle = sorted({e["name"] for e in ctr.get("env", [])} & SCHEDULE_ONLY_ENV)
        c.check(not idle, f"{where}: --once sets nothing only the SCHEDULE service reads", f"{idle}")
    for name in ("file-transformer", "status-checker"):
        c.check(any(o["kind"] == "Deployment" and o["metadata"]["name"] == name for o in objs), f"{where}: Deployment {name} kept")


def check_part_of(c, objs, where):
    """Every pod carries the pipeline's label, so one selector finds them all."""
    for o, meta, _ in pod_templates(objs):
        labels = meta.get("labels") or {}
        c.check(labels.get(PART_OF[0]) == PART_OF[1], f"{where}: {o['kind']}/{o['metadata']['name']} pods carry {PART_OF[0]}={PART_OF[1]}",
                f"{labels}")


def check_pdbs(c, objs, where):
    """file-transformer and status-checker each have a PodDisruptionBudget
    that selects their pods and only theirs."""
    pdbs = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    for name in ("file-transformer", "status-checker"):
        d = next((o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == name), None)
        if d is None:
            continue
        labels = d["spec"]["template"]["metadata"].get("labels") or {}
        mine = [p for p in pdbs if selector_matches(p["spec"].get("selector"), labels)]
        c.check(len(mine) == 1, f"{where}: one PodDisruptionBudget for {name}", f"{[p['metadata']['name'] for p in mine]}")
        for p in mine:
            spec = p["spec"]
            others = [o["metadata"]["name"] for o, meta, _ in pod_templates(objs)
                      if o is not d and selector_matches(spec.get("selector"), meta.get("labels") or {})]
            c.check(not others, f"{where}: PodDisruptionBudget {p['metadata']['name']} selects only {name}", f"{others}")
            replicas = d["spec"].get("replicas", 1)
            if "minAvailable" in spec:
                c.check(isinstance(spec["minAvailable"], int) and 1 <= spec["minAvailable"] <= replicas,
                        f"{where}: {name} PDB keeps at least one pod of {replicas}", f"{spec}")
            else:
                c.check(spec.get("maxUnavailable") == 1, f"{where}: {name} PDB lets one pod go at a time", f"{spec}")


def check_worker_http(c, objs, where):
    """Port 8080 of the workers only from the namespaces that need it."""
    workers = [meta.get("labels") or {} for o, meta, _ in pod_templates(objs)
               if (meta.get("labels") or {}).get("app.kubernetes.io/component") == "worker"]
    pols = [p for p in objs if p["kind"] == "NetworkPolicy"
            and any(selector_matches(p["spec"].get("podSelector"), l) for l in workers)]
    c.check(bool(pols), f"{where}: a NetworkPolicy admits the workers' HTTP port")
    for p in pols:
        n = p["metadata"]["name"]
        for rule in p["spec"].get("ingress") or []:
            ports = {q.get("port") for q in rule.get("ports") or []}
            c.check(ports == {8080}, f"{where}: {n} opens port 8080 only", f"{sorted(ports, key=str)}")
            peers = rule.get("from") or []
            c.check(bool(peers), f"{where}: {n} names its peers (an empty 'from' admits everyone)")
            for peer in peers:
                sel = peer.get("namespaceSelector")
                names = set()
                for e in (sel or {}).get("matchExpressions") or []:
                    if e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "In":
                        names |= set(e.get("values") or [])
                name = ((sel or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                if name:
                    names.add(name)
                ok = ("ipBlock" not in peer and "podSelector" not in peer and sel is not None
                      and names and names <= WORKER_HTTP_NAMESPACES
                      and all(selector_matches(sel, {"kubernetes.io/metadata.name": x}) for x in names)
                      and not selector_matches(sel, {"kubernetes.io/metadata.name": "some-other-namespace"}))
                c.check(ok, f"{where}: {n} admits only namespaces {sorted(WORKER_HTTP_NAMESPACES)}", f"{peer}")


def pod_relabel(relabelings, labels, job):
    """The job label Prometheus gives a pod target after the PodMonitor's
    relabelings (replace actions on pod labels, as the Operator passes them)."""
    meta = {"__meta_kubernetes_pod_label_" + re.sub(r"[^A-Za-z0-9_]", "_", k): v for k, v in labels.items()}
    out = {"job": job}
    for r in relabelings or []:
        if r.get("action", "replace").lower() != "replace":
            continue
        value = r.get("separator", ";").join(meta.get(n, out.get(n, "")) for n in r.get("sourceLabels", []))
        m = re.fullmatch(r.get("regex", "(.*)"), value)
        if m:
            out[r["targetLabel"]] = m.expand(r.get("replacement", "$1").replace("$", "\\"))
    return out["job"]


def check_monitoring(c, objs, where, source_dir, extra_pods):
    """deploy/monitoring in an overlay: the PodMonitor selects every worker
    pod that serves HTTP and nothing else, names its job after the worker as
    the alerts do, and the dashboard ConfigMap holds the dashboard file."""
    pms = [o for o in objs if o["kind"] == "PodMonitor"]
    rules = [o for o in objs if o["kind"] == "PrometheusRule"]
    if not (c.check(len(pms) == 1, f"{where}: one PodMonitor") and c.check(len(rules) == 1, f"{where}: one PrometheusRule")):
        return
    pm = pms[0]["spec"]
    namespaces = set((pm.get("namespaceSelector") or {}).get("matchNames") or [ns_of(pms[0])])
    ep = (pm.get("podMetricsEndpoints") or [{}])[0]
    pods = [(ns_of(o), meta.get("labels") or {}, o["metadata"]["name"],
             {p.get("containerPort") for ctr in spec.get("containers", []) for p in ctr.get("ports") or []})
            for o, meta, spec in pod_templates(objs)]
    pods += [(ns, labels, name, {8080}) for ns, labels, name in extra_pods]
    for ns, labels, name, ports in pods:
        is_worker = labels.get("app.kubernetes.io/component") == "worker"
        picked = ns in namespaces and selector_matches(pm.get("selector"), labels) and ep.get("portNumber") in ports
        if is_worker and 8080 in ports:
            c.check(picked, f"{where}: the PodMonitor scrapes {name} (namespace, labels, port 8080)", f"{ns} {labels} {ports}")
        elif picked:
            c.check(False, f"{where}: the PodMonitor selects only worker pods", name)
        if picked:
            job = pod_relabel(ep.get("relabelings"), labels, f"{ns_of(pms[0])}/{pms[0]['metadata']['name']}")
            c.check(job == name, f"{where}: {name}'s job label is its worker name", job)
    c.check(ep.get("path") == "/metrics", f"{where}: the PodMonitor scrapes /metrics")
    # Every worker pod that runs all day is watched by an absent() alert, and
    # no alert waits for a job that has no such pod.
    exprs = [r["expr"] for g in rules[0]["spec"]["groups"] for r in g["rules"]]
    absent = {m for e in exprs for m in re.findall(r'absent\(up\{job="([^"]+)"\}\)', e)}
    always = {name for o, meta, spec in pod_templates(objs) if o["kind"] != "CronJob"
              and (meta.get("labels") or {}).get("app.kubernetes.io/component") == "worker"
              for name in [o["metadata"]["name"]]} | {name for _, _, name in extra_pods}
    c.check(absent == always, f"{where}: an absent() alert for each long-running worker and no other",
            f"alerts {sorted(absent)}, long-running {sorted(always)}")
    named = {m for e in exprs for m in re.findall(r'job=~?"([^"]+)"', e) for m in m.split("|")}
    c.check(named <= set(WORKERS), f"{where}: the alerts name worker jobs only", f"{sorted(named)}")
    cms = [o for o in objs if o["kind"] == "ConfigMap" and (o["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    with open(os.path.join(source_dir, "deploy", "monitoring", "dashboards", "dataretailx.json"), encoding="utf-8") as fh:
        raw = fh.read()
    c.check(len(cms) == 1 and cms[0].get("data", {}).get("dataretailx.json") == raw,
            f"{where}: one grafana_dashboard=1 ConfigMap holding deploy/monitoring/dashboards/dataretailx.json")
    c.check(json.loads(raw).get("uid") == "dataretailx-pipeline", f"{where}: the dashboard parses and keeps its uid")


def check_dockerfile(c, source_dir, stack):
    path = os.path.join(source_dir, "Dockerfile")
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().replace("\\\n", " ").splitlines()
    instr = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
    args = {}
    for l in instr:
        m = re.match(r"ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S+))?", l)
        if m:
            args.setdefault(m.group(1), m.group(2))
    def expand(s):
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1)) or m.group(0), s)
    from_lines = [l.split() for l in instr if l.upper().startswith("FROM ")]
    stage_base = {f[3]: expand(f[1]) for f in from_lines if len(f) >= 4 and f[2].upper() == "AS"}

    def resolve(image):
        """A FROM naming an earlier stage stands for that stage's image."""
        seen = set()
        while image in stage_base and image not in seen:
            seen.add(image)
            image = stage_base[image]
        return image
    froms = [resolve(expand(f[1])) for f in from_lines]
    c.check(len(froms) >= 2, "Dockerfile: multi-stage", f"{froms}")
    c.check(froms and froms[0] == FULL_BASE_IMAGES[0], "Dockerfile: build stage on Debian bookworm, full name", f"{froms[:1]}")
    c.check(froms and froms[-1] == FULL_BASE_IMAGES[1], "Dockerfile: runtime stage debian:bookworm-slim, full name", f"{froms[-1:]}")
    # Stages: (name, instructions).  WORKER may appear only after every apt
    # layer of its stage, so the package layers are shared by the three
    # images; every apt layer cleans its caches itself.
    stages, cur = [], None
    for l in instr:
        if l.upper().startswith("FROM "):
            f = l.split()
            cur = (f[3] if len(f) >= 4 else f"stage{len(stages)}", [])
            stages.append(cur)
        elif cur is not None:
            cur[1].append(l)
    for name, body in stages:
        arg_at = next((i for i, l in enumerate(body) if re.match(r"ARG\s+WORKER\b", l)), len(body))
        late_apt = [l[:60] for l in body[arg_at:] if "apt-get install" in l]
        c.check(not late_apt, f"Dockerfile: stage {name} installs its packages before ARG WORKER", f"{late_apt}")
        for l in body:
            if "apt-get install" in l:
                c.check("rm -rf /var/lib/apt/lists/*" in l and ("apt-get clean" in l or "/var/cache/apt" in l),
                        f"Dockerfile: stage {name} cleans the apt lists and caches in the same layer", l[:80])
    with open(path, encoding="utf-8") as fh:
        short = [l.strip() for l in fh if re.search(r"(?<![\w./-])dataretailx/[a-z-]+:", l)]
    c.check(not short, "Dockerfile: image names are full (docker.io/dataretailx/...)", f"{short}")
    final = instr[max(i for i, l in enumerate(instr) if l.upper().startswith("FROM ")):]
    users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
    c.check(bool(users) and re.match(r"^[1-9][0-9]*(:[1-9][0-9]*)?$", users[-1]) is not None,
            "Dockerfile: runtime USER is a numeric non-root uid", f"{users}")
    ep = [l[len("ENTRYPOINT"):].strip() for l in final if l.upper().startswith("ENTRYPOINT")]
    ok = False
    if ep:
        try:
            ok = isinstance(json.loads(ep[-1]), list)
        except ValueError:
            ok = False
    c.check(ok, "Dockerfile: exec-form ENTRYPOINT (no shell at run time)", f"{ep}")
    runtime_pkgs = set()
    runtime_stages = instr[[i for i, l in enumerate(instr) if l.upper().startswith("FROM ")][1]:]
    for l in runtime_stages:
        if "apt-get install" in l:
            runtime_pkgs.update(w for w in l.split("apt-get install", 1)[1].split("&&")[0].split() if not w.startswith("-"))
    c.check(runtime_pkgs and not any(p.endswith("-dev") or p in ("build-essential", "gcc", "meson") for p in runtime_pkgs),
            "Dockerfile: runtime installs no build tools or -dev packages", f"{sorted(runtime_pkgs)}")
    for name, fn in (stack.get("functions") or {}).items():
        missing = sorted(set(fn.get("build_args") or {}) - set(args))
        c.check(not missing, f"Dockerfile: declares the build_args of {name}", f"{missing}")
    ignore = os.path.join(source_dir, ".dockerignore")
    entries = []
    if os.path.exists(ignore):
        with open(ignore, encoding="utf-8") as fh:
            entries = [l.strip() for l in fh if l.strip() and not l.strip().startswith("#")]
    left_out = [p for p in (".git", "build", "build-asan", "build-fuzz", "tests/deploy/node_modules", "deploy")
                if dockerignore_excludes(entries, p)]
    c.check(len(left_out) == 6, ".dockerignore: leaves out .git, the build trees, node_modules, deploy/", f"{left_out}")
    # meson setup in the build stage reads every directory the root
    # meson.build enters (with the options the Dockerfile gives it): each
    # must be copied in, and not left out of the build context.
    setup = " ".join(l for l in instr if "meson setup" in l)
    entered = sorted({d.split("/")[0] for d in meson_subdirs(source_dir, tests="-Dtests=false" not in setup)})
    build_stage = instr[:max(i for i, l in enumerate(instr) if l.upper().startswith("FROM "))]
    copied = {w.rstrip("/").split("/")[0] for l in build_stage if l.upper().startswith("COPY ")
              for w in l.split()[1:-1] if not w.startswith("--")}
    for d in entered:
        c.check(d in copied, f"Dockerfile: the build stage copies {d}/ (root meson.build enters it)",
                f"{sorted(copied)}")
        c.check(not dockerignore_excludes(entries, d) and not dockerignore_excludes(entries, d + "/meson.build"),
                f".dockerignore: does not leave out {d}/", f"{entries}")
    c.check("tests" not in copied, "Dockerfile: the images do not depend on tests/ (-Dtests=false)", f"{sorted(copied)}")


def dockerignore_excludes(patterns, path):
    """Whether a .dockerignore leaves path out: the last pattern that
    matches path or one of its parent folders decides, '!' re-includes."""
    import fnmatch
    parts = path.split("/")
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.rstrip("/")
        hit = False
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])):
                hit = True
                break
        if hit:
            excluded = not neg
    return excluded


def meson_subdirs(source_dir, tests=True):
    """The folders the root meson.build enters; with tests=False, not those
    under `if get_option('tests')`."""
    with open(os.path.join(source_dir, "meson.build"), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    out, skip = [], 0
    for l in lines:
        if re.match(r"^\s*if\s+get_option\('tests'\)", l):
            skip += 1 if not tests else 0
            continue
        if skip and re.match(r"^\s*endif", l):
            skip -= 1
            continue
        m = re.match(r"^\s*subdir\('([^']+)'\)", l)
        if m and not skip:
            out.append(m.group(1))
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", default=os.environ.get("DX_SOURCE_DIR", os.getcwd()))
    ap.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    ap.add_argument("--stack", default=None, help="stack file (default: SOURCE/stack.yml)")
    ap.add_argument("--overlays", default=None, help="overlays folder (default: SOURCE/deploy/k8s/overlays)")
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    for tool in (a.kubectl, "ssh-keygen"):
        if shutil.which(tool) is None:
            print(f"FAIL {tool} not found (scripts/test installs it)")
            print("0 passed, 1 failed")
            return 1
    overlays = a.overlays or os.path.join(src, "deploy", "k8s", "overlays")
    c = Checks()
    # kustomize v2 (kubectl <= 1.20, Debian's kubernetes-client) cannot read
    # directories in `resources:` nor the `labels:` transformer.
    ver = subprocess.run([a.kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True)
    try:
        minor = int(re.match(r"\d+", json.loads(ver.stdout)["clientVersion"]["minor"]).group(0))
    except (ValueError, KeyError, AttributeError):
        minor = 0
    c.check(minor >= 21, "kubectl >= 1.21 (kustomize v4+)", f"{a.kubectl}: {ver.stdout.strip() or ver.stderr.strip()}")
    with open(a.stack or os.path.join(src, "stack.yml"), encoding="utf-8") as fh:
        stack = yaml.safe_load(envsubst(fh.read())) or {}
    rendered = {}
    for name in ("openfaas", "standalone", "standalone-cronjob"):
        try:
            rendered[name] = render(a.kubectl, os.path.join(overlays, name))
            c.check(True, f"kubectl kustomize overlays/{name}")
        except subprocess.CalledProcessError as e:
            c.check(False, f"kubectl kustomize overlays/{name}", e.stderr.strip())
            rendered[name] = []

    check_stack(c, stack, src)
    check_topics(c, stack, rendered["openfaas"], src)
    check_env(c, stack, rendered["standalone"], src)
    check_dockerfile(c, src, stack)

    with tempfile.TemporaryDirectory() as tmp:
        script = {t: secrets_from_script(src, t, tmp) for t in ("openfaas", "standalone")}

    # OpenFaaS: the functions are pods faas-netes makes in openfaas-fn.
    fn_pods = [(OPENFAAS_FN_NAMESPACE, {"faas_function": n, "app.kubernetes.io/component": "worker",
                                        **{k: v for k, v in (f.get("labels") or {}).items()}}, n)
               for n, f in (stack.get("functions") or {}).items()]
    for name, fn in (stack.get("functions") or {}).items():
        for s in fn.get("secrets") or []:
            c.check((OPENFAAS_FN_NAMESPACE, s) in script["openfaas"] or (OPENFAAS_FN_NAMESPACE, s) in EXTERNAL_SECRETS,
                    f"stack.yml: {name} secret {s} is made by create-secrets.sh --target openfaas")
    accounts = {}
    for name in ("openfaas", "standalone"):
        accounts[name] = sftp_accounts(rendered[name])
    for name, fn in (stack.get("functions") or {}).items():
        check_urls(c, fn.get("environment") or {}, rendered["openfaas"], f"stack.yml {name}", accounts["openfaas"])
    cm = next((o["data"] for o in rendered["standalone"] if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "dataretailx-config"), {})
    check_urls(c, cm, rendered["standalone"], "standalone ConfigMap", accounts["standalone"])

    # known_hosts made by the script names the host the workers dial.
    for target, env in (("openfaas", (stack["functions"]["file-transformer"].get("environment") or {})), ("standalone", cm)):
        fn_ns = OPENFAAS_FN_NAMESPACE if target == "openfaas" else "dataretailx"
        kh = script[target].get((fn_ns, "sftp-known-hosts"), {}).get("data", {}).get("sftp-known-hosts", "")
        import base64
        text = base64.b64decode(kh).decode() if kh else ""
        host = urllib.parse.urlparse(env.get("INBOX_URL", "")).hostname or ""
        c.check(host in text.split(" ", 1)[0].split(","), f"create-secrets.sh --target {target}: known_hosts names {host}")

    check_references(c, rendered["openfaas"], "openfaas", script["openfaas"])
    check_references(c, rendered["standalone"], "standalone", script["standalone"])
    check_security(c, rendered["openfaas"], "openfaas")
    check_security(c, rendered["standalone"], "standalone")
    check_network(c, rendered["openfaas"], "openfaas", fn_pods)
    check_network(c, rendered["standalone"], "standalone", [])
    check_standalone(c, rendered["standalone"], stack)
    check_standalone_cronjob(c, rendered["standalone-cronjob"], stack)
    check_references(c, rendered["standalone-cronjob"], "standalone-cronjob", script["standalone"])
    check_security(c, rendered["standalone-cronjob"], "standalone-cronjob")
    for name in ("openfaas", "standalone", "standalone-cronjob"):
        check_part_of(c, rendered[name], name)
    check_monitoring(c, rendered["openfaas"], "openfaas", src, fn_pods)
    check_monitoring(c, rendered["standalone"], "standalone", src, [])
    check_monitoring(c, rendered["standalone-cronjob"], "standalone-cronjob", src, [])

    # The secrets script refuses a bad invocation with exit 2.
    r = subprocess.run([os.path.join(src, "deploy", "k8s", "create-secrets.sh"), "--target", "nowhere"],
                       capture_output=True, text=True)
    c.check(r.returncode == 2, "create-secrets.sh: bad arguments exit 2", f"exit {r.returncode}")

    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
