"""promtool unit tests of the alerts shipped in deploy/monitoring (issue 14).

The rules are read from the PrometheusRule itself (spec.groups), written as
a Prometheus rule file beside a copy of each deploy/monitoring/tests/*.yml,
then `promtool check rules` and `promtool test rules` run on them: what is
tested is what ships, no copy to drift.

Then each alert rule is planted a bug, one at a time, and the unit tests
must fail: its `for:` one minute shorter (so its not-firing boundary is
tested) and its expression made empty (so its firing is tested).  A rule
no test looks at fails here.
"""

import argparse
import copy
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

from test_consistency import Checks

RULE_FILE = "dataretailx.rules.yml"


def rule_groups(path):
    """spec.groups of the PrometheusRule at path."""
    with open(path, encoding="utf-8") as fh:
        obj = yaml.safe_load(fh)
    return obj["spec"]["groups"]


def minutes(duration):
    """A `for:` of the form 10m or 1h30m -> minutes."""
    total = 0
    for n, unit in re.findall(r"(\d+)([hm])", duration):
        total += int(n) * (60 if unit == "h" else 1)
    return total


def run_promtool(promtool, workdir, groups, tests):
    """Writes the rule file and the tests into workdir, runs promtool test
    rules on every test file; returns (exit code, output)."""
    with open(os.path.join(workdir, RULE_FILE), "w", encoding="utf-8") as fh:
        yaml.safe_dump({"groups": groups}, fh, sort_keys=False)
    names = []
    for t in tests:
        shutil.copy(t, workdir)
        names.append(os.path.basename(t))
    r = subprocess.run([promtool, "test", "rules", *names], cwd=workdir,
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", default=os.environ.get("DX_SOURCE_DIR", os.getcwd()))
    ap.add_argument("--promtool", default=os.environ.get("PROMTOOL_BIN", "promtool"))
    a = ap.parse_args()
    c = Checks()
    if shutil.which(a.promtool) is None:
        print(f"FAIL {a.promtool} not found: run scripts/test (it installs prometheus)")
        print("0 passed, 1 failed")
        return 1
    mon = os.path.join(os.path.abspath(a.source_dir), "deploy", "monitoring")
    groups = rule_groups(os.path.join(mon, "prometheusrule.yaml"))
    tests = sorted(glob.glob(os.path.join(mon, "tests", "*.yml")))
    c.check(bool(tests), "deploy/monitoring/tests/*.yml exist")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, RULE_FILE), "w", encoding="utf-8") as fh:
            yaml.safe_dump({"groups": groups}, fh, sort_keys=False)
        r = subprocess.run([a.promtool, "check", "rules", RULE_FILE], cwd=tmp,
                           capture_output=True, text=True, timeout=60)
        c.check(r.returncode == 0, "promtool check rules accepts the PrometheusRule's groups",
                (r.stdout + r.stderr).strip())
        code, out = run_promtool(a.promtool, tmp, groups, tests)
        c.check(code == 0, "promtool test rules: every alert fires and stays quiet as tested",
                out.strip())
        for gi, group in enumerate(groups):
            for ri, rule in enumerate(group["rules"]):
                if "alert" not in rule:
                    continue
                name = f"{rule['alert']} ({rule['expr']})"
                c.check(minutes(rule.get("for", "0m")) >= 1, f"{name} has a for: of a minute or more")
                if minutes(rule.get("for", "0m")) >= 1:
                    bad = copy.deepcopy(groups)
                    bad[gi]["rules"][ri]["for"] = f"{minutes(rule['for']) - 1}m"
                    code, out = run_promtool(a.promtool, tmp, bad, tests)
                    c.check(code != 0, f"{name}: a for: one minute shorter fails the tests")
                bad = copy.deepcopy(groups)
                bad[gi]["rules"][ri]["expr"] = f"({rule['expr']}) and on() vector(0) < 0"
                code, out = run_promtool(a.promtool, tmp, bad, tests)
                c.check(code != 0, f"{name}: never firing fails the tests")
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
