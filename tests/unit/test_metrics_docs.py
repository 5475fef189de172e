#!/usr/bin/env python3
"""The metrics table of the docs against METRICS_TABLE in metrics.h.

METRICS_TABLE (workers/common/metrics.h) is the one source of the metrics
the workers expose; the docs' table (docs/operations.md, or README.md's
"Metrics" section before the docs were split) describes them for operators.
This fails on any drift: a metric on one side only, or a different type or
label set.  Also checks that each row's id is its name in capitals.

Usage: test_metrics_docs.py SOURCE_DIR
"""

import os
import re
import sys

ROW = re.compile(
    r'X\(\s*(\w+)\s*,\s*"([^"]+)"\s*,\s*METRIC_(\w+)\s*,\s*"([^"]*)"\s*,\s*(NULL|"[^"]*")')


def c_table(source_dir):
    with open(os.path.join(source_dir, "workers", "common", "metrics.h")) as f:
        text = f.read()
    start = text.index("#define METRICS_TABLE(X)")
    end = text.index("\n\n", start)
    body = text[start:end].replace("\\\n", " ")
    rows = {}
    for ident, name, kind, labels, _scope in ROW.findall(body):
        rows[name] = (ident, kind.lower(), [l for l in labels.split(",") if l])
    return rows


def docs_table(source_dir):
    """Rows of the first table under a "Metrics" heading: name -> (type, labels)."""
    for rel in (os.path.join("docs", "operations.md"), "README.md"):
        path = os.path.join(source_dir, rel)
        if not os.path.exists(path):
            continue
        lines = open(path).read().splitlines()
        heading = next((i for i, l in enumerate(lines)
                        if re.match(r"#+ .*\bMetrics\b", l)), None)
        if heading is None:
            continue
        rows, in_table = {}, False
        for line in lines[heading + 1:]:
            if line.startswith("#"):
                break
            if not line.startswith("|"):
                if in_table:
                    break
                continue
            in_table = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) < 3 or cells[0] in ("metric", "") or set(cells[0]) <= set("-: "):
                continue
            labels_cell = re.sub(r"\(.*?\)", "", cells[2])
            labels = re.findall(r"`([a-z_]+)`", labels_cell)
            for name in re.findall(r"`(dx_[a-z_]+)`", cells[0]):
                rows[name] = (cells[1].strip().lower(), labels)
        return rel, rows
    return None, {}


def main():
    source_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DX_SOURCE_DIR", ".")
    code = c_table(source_dir)
    where, docs = docs_table(source_dir)
    failures, checks = [], 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)

    check(len(code) >= 10, f"METRICS_TABLE parsed ({len(code)} rows)")
    check(where is not None and len(docs) >= 10, f"metrics table found in the docs ({where})")
    for name, (ident, kind, labels) in sorted(code.items()):
        check(ident == name.upper(), f"{ident}: the id of {name} is its name in capitals")
        check(name in docs, f"{name} is in METRICS_TABLE but not in {where}")
        if name in docs:
            check(docs[name][0] == kind, f"{name}: type {docs[name][0]} in {where}, {kind} in C")
            check(docs[name][1] == labels,
                  f"{name}: labels {docs[name][1]} in {where}, {labels} in C")
    for name in sorted(set(docs) - set(code)):
        check(False, f"{name} is in {where} but not in METRICS_TABLE")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print(f"test_metrics_docs: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures or checks == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
