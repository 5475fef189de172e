"""dxctl (issue 13), every command, on a real nats-server (JetStream), the
three workers, and a real sshd for the replay through sftp://.

client list/get/history/import/export, trigger (with and without --wait),
replay on sftp://, events (--subject, --client, --since, --follow),
status (--client, --date), schedule, validate (usable, unusable, with a
client's profile), --help on each command, and the exit codes 2 (bad
arguments or settings) and 3 (NATS or the status page unreachable).
"""

import json
import os
import subprocess
import sys
import time

import harness
from dxctl_run import dxctl, dxctl_json
from sshd import Sshd

DATE = "2026-11-24"
HEADER = "order_id;order_date;quantity;unit_price;currency\n"


def test_help_and_usage(p, t):
    for cmd in ("client", "trigger", "replay", "events", "status", "schedule", "validate"):
        code, out, _ = dxctl(p, cmd, "--help")
        t.check(code == 0 and "usage: dxctl" in out, f"dxctl {cmd} --help exits 0 with a usage")
    code, out, _ = dxctl(p, "--help")
    t.check(code == 0 and "Exit codes" in out, "dxctl --help documents the exit codes")
    for args in (["frobnicate"], ["trigger"], ["trigger", "--client", "US1", "--date", "2026-02-30"],
                 ["client", "get"], ["events", "--since", "soon"], []):
        code, _, err = dxctl(p, *args)
        t.check(code == 2, f"dxctl {args} exits 2 (got {code}: {err.strip()})")
    code, _, err = dxctl(p, "client", "list", NATS_URL="nats://127.0.0.1:1", timeout=120)
    t.check(code == 3 and "NATS" in err, f"unreachable NATS exits 3 ({code}: {err.strip()})")
    code, _, err = dxctl(p, "status", STATUS_URL="http://127.0.0.1:1")
    t.check(code == 3, f"unreachable status page exits 3 ({code}: {err.strip()})")
    code, _, err = dxctl(p, "client", "list", MAX_DELIVER="many")
    t.check(code == 2 and "MAX_DELIVER" in err, f"a bad setting exits 2 naming it ({err.strip()})")


def test_client_commands(p, t):
    profiles = {"US10": {"date_order": "MDY", "default_currency": "USD"},
                "US11": {"aliases": {"Qté": "quantity"}, "done_marker": ".done"}}
    path = os.path.join(p.workdir, "profiles.json")
    with open(path, "w") as f:
        json.dump(profiles, f)
    code, out, err = dxctl(p, "client", "import", path)
    t.check(code == 0 and "2 changed" in out, f"import writes both ({out}{err})")
    code, out, _ = dxctl(p, "client", "import", path)
    t.check(code == 0 and "0 changed" in out, "importing the same profiles changes nothing")
    bad = os.path.join(p.workdir, "bad.json")
    with open(bad, "w") as f:
        json.dump({"US12": {"enabled": True}, "US13": {"date_order": "nope"}}, f)
    code, _, err = dxctl(p, "client", "import", bad)
    t.check(code == 1 and "US13" in err, f"an import with one bad profile is refused ({err})")
    code, _, _ = dxctl(p, "client", "get", "US12")
    t.check(code == 1, "nothing of a refused import is written (all or nothing)")
    code, doc, _ = dxctl_json(p, "client", "export")
    t.check(code == 0 and doc == profiles, f"export gives back what was imported ({doc})")
    code, doc, _ = dxctl_json(p, "client", "get", "US10")
    t.check(code == 0 and doc["profile"] == profiles["US10"] and doc["revision"] > 0,
            f"get --json ({doc})")
    code, out, _ = dxctl(p, "client", "set", "US10", "date_order=YMD")
    code, out, _ = dxctl(p, "client", "set", "US10", "default_currency=")
    code, doc, _ = dxctl_json(p, "client", "history", "US10")
    t.check(code == 0 and [h["profile"] for h in doc] == [
        profiles["US10"], {"date_order": "YMD", "default_currency": "USD"},
        {"date_order": "YMD"}], f"history keeps every revision, oldest first ({doc})")
    code, out, _ = dxctl(p, "client", "list")
    lines = out.splitlines()
    t.check(lines[0].startswith("CLIENT") and any(l.startswith("US11") and ".done" in l
                                                  for l in lines), f"list is a table ({out})")
    doc_path = os.path.join(p.workdir, "us14.json")
    with open(doc_path, "w") as f:
        f.write('{"thousands_separator": "none"}')
    code, out, err = dxctl(p, "client", "set", "US14", doc_path)
    t.check(code == 0, f"set from a file ({err})")


def test_validate(p, t):
    path = os.path.join(p.workdir, "check.csv")
    with open(path, "w", encoding="cp1252") as f:
        f.write("order_id;date;Qté;prix;extra\nA1;03/04/2026;1;1,50;x\nA2;99/99/2026;1;1;y\n"
                "A3;03/04/2026;x;1;z\n")
    code, doc, err = dxctl_json(p, "validate", path)
    t.check(code == 0 and doc, f"validate a usable file exits 0 ({err})")
    if doc:
        t.check(doc["delimiter"] == ";" and doc["encoding"] == "Windows-1252",
                f"delimiter and encoding ({doc['delimiter']}, {doc['encoding']})")
        t.check(doc["rows_in"] == 3 and doc["rows_out"] == 1 and doc["rows_rejected"] == 2,
                f"counts ({doc})")
        t.check(doc["reject_reasons"] == {"invalid_date": 1, "invalid_quantity": 1},
                f"reject reasons with counts ({doc['reject_reasons']})")
        t.check(len(doc["first_rejects"]) == 2 and doc["first_rejects"][0].startswith("3,"),
                f"the first rejected lines ({doc['first_rejects']})")
        t.check("quantity" in doc["mapped"] and doc["unmapped"] == ["extra"],
                f"mapped and unmapped columns ({doc['mapped']}, {doc['unmapped']})")
    bad = os.path.join(p.workdir, "bad.csv")
    with open(bad, "w") as f:
        f.write("ref;Prix unitaire TTC\nA1;1\n")
    code, doc, _ = dxctl_json(p, "validate", bad)
    t.check(code == 1 and doc and doc["missing_required"] == [
        "order_id", "order_date", "quantity", "unit_price"] and
        "Prix unitaire TTC" in doc["reason"], f"an unusable file: every missing column ({doc})")
    code, _, _ = dxctl(p, "client", "set", "US15", "aliases.ref=order_id",
                       "aliases.Prix unitaire TTC=unit_price")
    code, doc, _ = dxctl_json(p, "validate", bad, "--client", "US15")
    t.check(code == 1 and doc and doc["missing_required"] == ["order_date", "quantity"],
            f"with the client's aliases, only the others are missing ({doc})")
    t.check(not os.listdir(p.depot) or "US15" not in os.listdir(p.depot),
            "validate writes nothing to the depot")


def test_trigger_and_events(p, t):
    p.drop("US16", "input.csv", HEADER + "G1;24/11/2026;2;3,00;EUR\n")
    code, doc, err = dxctl_json(p, "trigger", "--client", "US16", "--date", DATE)
    t.check(code == 0 and doc and doc["triggered_by"] == "manual", f"trigger publishes ({err})")
    p.wait_runs(["US16"], DATE)
    code, out, _ = dxctl(p, "trigger", "--client", "US16", "--date", DATE, "--wait=30")
    t.check(code == 1 and "no drop was processed" in out,
            f"a run with nothing to do does not count as a success ({code}: {out})")
    code, out, _ = dxctl(p, "events", "--client", "US16", "--subject", "orders.file-ready")
    lines = [json.loads(l) for l in out.splitlines()]
    t.check(len(lines) == 1 and lines[0]["event"]["client_id"] == "US16" and
            lines[0]["event"]["rows_out"] == 1, f"events decoded, filtered ({lines})")
    code, out, _ = dxctl(p, "events", "--since", "1h")
    subjects = {json.loads(l)["subject"] for l in out.splitlines()}
    t.check({"orders.order-date", "orders.file-ready"} <= subjects,
            f"events --since 1h has both kinds ({subjects})")
    # --follow prints an event published after it started.
    e = p.env("dxctl", LOG_LEVEL="error")
    proc = subprocess.Popen(harness.worker_command("dxctl", ["events", "--follow", "--since", "0s",
                                                             "--client", "US17"]),
                            env=e, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        dxctl(p, "trigger", "--client", "US17", "--date", DATE)
        line = proc.stdout.readline().decode()
        t.check('"client_id":"US17"' in line, f"--follow prints the new event ({line})")
    finally:
        proc.kill()
        proc.wait()


def test_status_and_schedule(p, t):
    code, out, _ = dxctl(p, "status", "--client", "US16")
    t.check(code == 0 and "US16" in out and "ROWS IN" in out, f"status table ({out})")
    code, doc, _ = dxctl_json(p, "status", "--client", "US16", "--date", DATE)
    t.check(code == 0 and doc and all(r["client_id"] == "US16" for r in doc["runs"]) and
            len(doc["runs"]) == 1, "status --json filtered by client and date")
    code, doc, _ = dxctl_json(p, "schedule", SCHEDULE="30 7 * * *", TZ="Europe/Paris")
    t.check(code == 0 and doc and len(doc["next_runs"]) == 5 and
            all("07:30" in r for r in doc["next_runs"]) and doc["last_run"] is None,
            f"schedule lists the next runs in TZ ({doc})")
    code, _, err = dxctl(p, "schedule", SCHEDULE="61 * * * *")
    t.check(code == 2 and "SCHEDULE" in err, f"a bad SCHEDULE exits 2 ({err.strip()})")


def test_replay_sftp(t, server):
    os.makedirs(server.path("inbox"), exist_ok=True)
    os.makedirs(server.path("depot"), exist_ok=True)
    with harness.pipeline_run(t, "dxctl-sftp", inbox_url=server.url("inbox"),
                              depot_url=server.url("depot"), extra_env=server.env()) as p:
        p.inbox, p.depot = server.path("inbox"), server.path("depot")
        p.start()
        p.drop("US20", "input.csv", "order_id;date;qty;Montant\nS1;24/11/2026;1;5,00\n")
        code, _, _ = dxctl(p, "trigger", "--client", "US20", "--date", DATE, "--wait=60")
        t.check(code == 1, "sftp: the unknown header fails the file")
        t.check(os.path.isfile(os.path.join(p.inbox, "US20", "failed", DATE, "input.csv")),
                "sftp: the drop is in failed/")
        dxctl(p, "client", "set", "US20", "aliases.Montant=unit_price")
        code, out, err = dxctl(p, "replay", "--client", "US20", "--date", DATE, "--source",
                               "input.csv", "--wait=60")
        t.check(code == 0 and "succeeded" in out, f"sftp: replay succeeds ({out}{err})")
        t.check(os.path.isfile(os.path.join(p.depot, "US20", DATE, "input.csv")),
                "sftp: the output is in the depot")
        code, out, _ = dxctl(p, "status", "--client", "US20")
        t.check("supersedes the file-failed" in out, f"sftp: status shows the superseded failure ({out})")
        code, _, err = dxctl(p, "replay", "--client", "US20", "--date", "2026-11-01")
        t.check(code == 1 and "no archived or failed drop" in err,
                f"replay of a day without drops exits 1 ({err.strip()})")


def main():
    t = harness.TestRun("test_dxctl")
    with harness.pipeline_run(t, "dxctl") as p:
        p.start()
        for test in (test_help_and_usage, test_client_commands, test_validate,
                     test_trigger_and_events, test_status_and_schedule):
            try:
                test(p, t)
            except Exception as e:  # noqa: BLE001 - one scenario's crash fails it, not the rest
                t.check(False, f"{test.__name__}: exception {e!r}")
    server = Sshd()
    try:
        server.start()
        test_replay_sftp(t, server)
    except Exception as e:  # noqa: BLE001
        t.check(False, f"sftp replay: exception {e!r}")
    finally:
        server.stop()
        server.cleanup()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
