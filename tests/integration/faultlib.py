"""Helpers shared by test_faults.py and test_cluster.py: large drops, depot
inspection, stream counting, log timestamps.  Python standard library only.
"""

import datetime
import hashlib
import os
import shutil
import subprocess

import harness

HEADER = ("order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,"
          "unit_price,currency,status\n")


def write_orders(path, rows, prefix="A"):
    """Writes a drop of `rows` order lines, with a rejected row every 1000
    (a negative quantity) and a duplicated row every 997, so that both output
    files have content.  About 88 bytes a row."""
    with open(path, "w") as f:
        f.write(HEADER)
        chunk = []
        for i in range(rows):
            qty = -1 if i % 1000 == 999 else i % 7 + 1
            line = (f"{prefix}-{i},2026-11-24,C{i % 977},c{i % 977}@example.com,SKU-{i % 101},"
                    f"Product number {i % 53},{qty},{(i % 1000) / 10 + 1:.2f},EUR,delivered\n")
            chunk.append(line)
            if i % 997 == 996:
                chunk.append(line)
            if len(chunk) >= 5000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def clean_reference(src, workdir, name):
    """Cleans src offline with `file-transformer clean`; returns the paths
    of the reference output and rejects files."""
    out = os.path.join(workdir, f"ref-{name}.csv")
    rejects = os.path.join(workdir, f"ref-{name}.rejects.csv")
    res = subprocess.run([harness.binary("file-transformer"), "clean", src, out, rejects],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"file-transformer clean failed: {res.stdout[-300:]!r}")
    return out, rejects


def copy_drop(p, client, name, src):
    folder = os.path.join(p.inbox, client)
    os.makedirs(folder, exist_ok=True)
    dst = os.path.join(folder, name)
    shutil.copyfile(src, dst)
    return dst


def temp_files(folder):
    """Hidden temporary files of the storage writer in folder (recursive)."""
    out = []
    for root, _dirs, files in os.walk(folder):
        out += [os.path.join(root, n) for n in files if n.startswith(".") and ".tmp-" in n]
    return out


def depot_files(p, client, date):
    folder = os.path.join(p.depot, client, date)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def msg_ids(entries):
    ids = []
    for hdrs, _data in entries:
        for line in hdrs.split("\r\n"):
            if line.lower().startswith("nats-msg-id:"):
                ids.append(line.split(":", 1)[1].strip())
    return ids


def log_time(record):
    """A log record's ts as seconds since the epoch."""
    ts = record["ts"].replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(ts).timestamp()


def runs_of(status, client, date=None):
    return [r for r in status.get("runs", []) if r["client_id"] == client
            and (date is None or r["order_date"] == date)]


def failures_of(status, client, date=None):
    return [r for r in status.get("failures", []) if r["client_id"] == client
            and (date is None or r["order_date"] == date)]


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_reports(workdir):
    """Lines of sanitizer reports in the worker logs under workdir."""
    out = []
    for root, _dirs, files in os.walk(workdir):
        for name in files:
            if name.endswith(".log"):
                for line in harness.read_log_lines(os.path.join(root, name)):
                    if any(mark in line for mark in SANITIZER_MARKS):
                        out.append(f"{name}: {line}")
    return out
