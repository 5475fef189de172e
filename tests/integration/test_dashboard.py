"""Every query of the Grafana dashboard and every alert of deploy/monitoring
against a real Prometheus scraping the live workers (issue 14).

Starts the three workers as services, a local webhook receiver for the
notifier, and Prometheus as test_prometheus does (scrapes every second, one
job per worker) with the alert rules loaded from spec.groups of
deploy/monitoring/prometheusrule.yaml.  Runs a few drops: US1 with rejected
rows and a duplicate, US2 clean, US3 unusable (a permanent failure), and one
undecodable message (terminated).  Then:
  - every query of deploy/monitoring/dashboards/dataretailx.json, with the
    template variables substituted as Grafana would ($client_id = its All
    value, $__rate_interval, $__range, $__interval), parses and returns at
    least one series, and each series carries the labels its legend shows;
  - the client_id variable's label_values() lists the clients of the run;
  - every alert expression parses and is evaluated; the ones this run must
    trigger (US3's open failure, the terminated message) return their
    series and are pending in Prometheus, the ones a healthy pipeline keeps
    quiet (worker down or not scraped, no success, behind, notifications
    failing, redeliveries) return none;
  - Prometheus loaded every rule and evaluates each without error.
"""

import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse

import harness
import yaml
from test_prometheus import (DATE, US1_DROP, US2_DROP, US3_DROP, WORKERS, Prometheus,
                             publish_undecodable_and_settle)

SOURCE = os.environ.get("DX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MONITORING = os.path.join(SOURCE, "deploy", "monitoring")
# Grafana's own values for a 1s scrape interval and a short range; any
# window holding a few samples will do.
GRAFANA_VARS = {"__rate_interval": "30s", "__interval": "15s", "__range": "1h"}
# The alerts this run triggers (the labels their series must carry), and the
# ones that must stay quiet; every other alert is only evaluated.
MUST_FIRE = {"DataRetailXClientFailed": {"client_id": "US3"},
             "DataRetailXEventsTerminated": {"job": "file-transformer", "subject": "orders.order-date"}}
MUST_BE_QUIET = {"DataRetailXWorkerDown", "DataRetailXWorkerNotScraped", "DataRetailXClientNoSuccess",
                 "DataRetailXStatusCheckerBehind", "DataRetailXNotificationsFailing",
                 "DataRetailXEventsRedelivered"}


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback that accepts every POST."""

    def __init__(self):
        self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(h):
                n = int(h.headers.get("Content-Length") or 0)
                self.bodies.append(h.rfile.read(n))
                h.send_response(200)
                h.send_header("Content-Length", "0")
                h.end_headers()

            def log_message(h, *args):
                pass
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def rule_groups():
    with open(os.path.join(MONITORING, "prometheusrule.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["spec"]["groups"]


def dashboard():
    with open(os.path.join(MONITORING, "dashboards", "dataretailx.json"), encoding="utf-8") as fh:
        return json.load(fh)


def dashboard_targets(dash):
    """(panel title, target) for every query of every panel, rows included."""
    def walk(panels):
        for p in panels:
            yield from ((p["title"], t) for t in p.get("targets", []) if t.get("expr"))
            yield from walk(p.get("panels", []))
    return list(walk(dash["panels"]))


def substitute(expr, variables):
    """$name and ${name} replaced by their value, as Grafana does."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError(f"template variable ${name} of {expr!r} has no test value")
        return variables[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def api(prom, path, params):
    code, body = harness.http_get(prom.port, path + "?" + urllib.parse.urlencode(params, doseq=True))
    reply = json.loads(body)
    if code != 200 or reply.get("status") != "success":
        raise ValueError(f"{path} {params} answered {code}: {body[:300]!r}")
    return reply["data"]


def run_pipeline(p, t):
    p.drop("US1", "input.csv", US1_DROP)
    p.drop("US2", "input.csv", US2_DROP)
    p.drop("US3", "input.csv", US3_DROP)
    code, body = harness.http_post(p.ports["daily-checker"], "/",
                                   json.dumps({"order_date": DATE}).encode(),
                                   headers={"Content-Type": "application/json"})
    t.check(code == 200, f"POST / to daily-checker answers 200 (got {code}: {body[:200]!r})")
    publish_undecodable_and_settle(p, handled=4, ready=2, failed=1)


def check_dashboard(prom, t, dash):
    variables = dict(GRAFANA_VARS)
    for v in dash["templating"]["list"]:
        if v["type"] == "datasource":
            continue
        # label_values(metric, label): what Grafana asks /api/v1/label for.
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["query"]["query"])
        if not t.check(m is not None, f"variable ${v['name']} is a label_values() query ({v['query']})"):
            continue
        values = api(prom, f"/api/v1/label/{m.group(2)}/values", {"match[]": m.group(1)})
        t.check({"US1", "US2", "US3"} <= set(values),
                f"${v['name']} = {v['query']['query']} lists the clients of the run (got {values})")
        t.check(v.get("includeAll") and v.get("allValue"), f"${v['name']} has an All value")
        variables[v["name"]] = v.get("allValue") or "|".join(values)
    targets = dashboard_targets(dash)
    t.check(len(targets) >= 20, f"the dashboard has its queries ({len(targets)})")
    for title, target in targets:
        expr = substitute(target["expr"], variables)
        what = f"{title!r}: {expr}"
        try:
            result = api(prom, "/api/v1/query", {"query": expr})["result"]
        except ValueError as e:
            t.check(False, f"{what} parses and is evaluated ({e})")
            continue
        if not t.check(bool(result), f"{what} returns series"):
            continue
        shown = re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", ""))
        missing = [r["metric"] for r in result if any(not r["metric"].get(name) for name in shown)]
        t.check(not missing, f"{what}: every series has the labels its legend shows {shown} ({missing[:2]})")


def check_alerts(prom, t, groups):
    names = set()
    for g in groups:
        for rule in g["rules"]:
            name = rule["alert"]
            names.add(name)
            try:
                result = api(prom, "/api/v1/query", {"query": rule["expr"]})["result"]
            except ValueError as e:
                t.check(False, f"{name}: {rule['expr']} parses and is evaluated ({e})")
                continue
            t.check(True, f"{name}: {rule['expr']} parses and is evaluated")
            if name in MUST_FIRE:
                want = MUST_FIRE[name]
                t.check(any(all(r["metric"].get(k) == v for k, v in want.items()) for r in result),
                        f"{name} returns the series {want} in this run (got {[r['metric'] for r in result]})")
            elif name in MUST_BE_QUIET:
                t.check(not result, f"{name}: {rule['expr']} is empty in a healthy run "
                        f"(got {[r['metric'] for r in result]})")
    t.check(set(MUST_FIRE) | MUST_BE_QUIET <= names, "the test names only alerts that exist")
    # Prometheus itself: every rule loaded, evaluated after the run, no error.
    loaded = [r for g in api(prom, "/api/v1/rules", {})["groups"] for r in g["rules"]]
    t.check(len(loaded) == sum(len(g["rules"]) for g in groups),
            f"Prometheus loaded every rule ({len(loaded)})")
    for r in loaded:
        t.check(r.get("health") == "ok" and not r.get("lastError"),
                f"Prometheus evaluates {r['name']} ({r['query']}) without error "
                f"({r.get('health')}: {r.get('lastError')})")
    active = api(prom, "/api/v1/alerts", {})["alerts"]
    for name, want in MUST_FIRE.items():
        t.check(any(a["labels"].get("alertname") == name and a["state"] in ("pending", "firing")
                    and all(a["labels"].get(k) == v for k, v in want.items()) for a in active),
                f"Prometheus holds {name} {want} as pending or firing "
                f"(got {[(a['labels'], a['state']) for a in active]})")


def main():
    t = harness.TestRun("test_dashboard")
    p = harness.Pipeline("dashboard")
    prom = None
    receiver = Receiver()
    try:
        hook = os.path.join(p.workdir, "webhook-url")
        with open(hook, "w") as f:
            f.write(receiver.url + "\n")
        os.chmod(hook, 0o600)
        p.start_nats()
        p.start_worker("status-checker", NOTIFY_WEBHOOK_URL_FILE=hook)
        p.start_worker("file-transformer")
        p.start_worker("daily-checker", SCHEDULE="")
        groups = rule_groups()
        prom = Prometheus(p.workdir, {w: p.ports[w] for w in WORKERS})
        rules = os.path.join(prom.dir, "dataretailx.rules.yml")
        with open(rules, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        with open(prom.config, "a", encoding="utf-8") as f:
            f.write(f"rule_files: ['{rules}']\n")
        prom.start()
        # A first scrape of every job before the run: increase() and rate()
        # see a counter grow only from a sample taken before it grew.
        harness.wait_until(lambda: all(prom.value(f'up{{job="{w}"}}') == 1 for w in WORKERS),
                           timeout=30, what="a first scrape of every job")
        run_pipeline(p, t)
        settled_at = time.time()
        # Every job scraped a few times after the run (rate() needs two
        # samples), then every rule evaluated on those.
        harness.wait_until(
            lambda: all((prom.value(f'timestamp(up{{job="{w}"}})') or 0) > settled_at + 3
                        for w in WORKERS),
            timeout=30, what="scrapes of every job after the run")

        def evaluated():
            for g in api(prom, "/api/v1/rules", {})["groups"]:
                last = g.get("lastEvaluation", "")
                if not last or last.startswith("0001"):
                    return False
            return True
        harness.wait_until(evaluated, timeout=30, what="the rules evaluated")
        time.sleep(2)
        check_dashboard(prom, t, dashboard())
        check_alerts(prom, t, groups)
    except Exception as e:  # a crash of the test is a failure, with logs
        t.check(False, f"exception: {e!r}")
    finally:
        if prom is not None:
            prom.stop()
        receiver.shutdown()
        if t.failed:
            p.dump_logs()
        p.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
