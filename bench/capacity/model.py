#!/usr/bin/env python3
"""The capacity model of the morning (docs/capacity.md): clients x drop size
x transformer replicas x SFTP servers x NATS -> time until every client's
file is in the depot, and the first bottleneck.  Not a test; arithmetic only.

Every constant below is a figure a benchmark printed on this project's 2-CPU
machine (docs/capacity.md says which); change them with the options.

Usage:
  bench/capacity/model.py                       # the table of docs/capacity.md
  bench/capacity/model.py -n 100 --rows 100000 -k 4 --cores 2 --storage file
Python 3 standard library only.
"""

import argparse

# Bytes per row of the generated messy drops (bench/gen_orders.py: 1,000,000
# rows are 113.9 MB).
ROW_BYTES = 113.9
# The engine: CPU seconds per MB cleaned (bench/run-clean-bench 1000000,
# median 1.24 CPU-s for 113.9 MB).
CLEAN_CPU_PER_MB = 1.24 / 113.9
# Fixed CPU per drop, whatever its size (bench/capacity/run-replicas
# --build build-release -k 1 -n 1000 --rows 5: each process's CPU seconds
# over 1000 drops, divided by 1000).
EVENT_CPU = {"file-transformer": 0.0042, "status-checker": 0.0013, "nats-server": 0.0029}
# SFTP on the transformer's side: CPU seconds per MB moved (read or written),
# bench/capacity/run-replicas --sftp -k 4 -n 50 against the same run on
# file:// (196.4 - 138.3 ms per 11.4 MB drop read and written back).
SFTP_CLIENT_CPU_PER_MB = 0.0581 / (2 * 11.39)
# The server's side: one connection on loopback moves 241 MB/s read and
# 183 MB/s written (tests/integration/test_sftp_storage.py,
# docs/operations.md); counted as one server core busy for that time.
SFTP_READ_MB_S = 241.0
SFTP_WRITE_MB_S = 183.0
# The clean output is about as large as the drop (plus the rejects file).
OUT_FRACTION = 1.0
# daily-checker's look at one client's folder (list, stat, publish the
# DropCheck and the OrderDate, each waiting for JetStream's ack), serial
# within one check: bench/capacity/run-replicas --checker, 300 folders on
# file:// and 50 on sftp://, both under a load average of about 18.
CHECK_S_PER_CLIENT = {"file": 0.024, "sftp": 0.136}


def predict(clients, rows, replicas, cores, storage, sftp_servers=1, sftp_cores=2,
            nats_cores=1, status_cores=0.5):
    """Returns (seconds until the last file is in the depot, bottleneck name,
    {stage: drops per second}, seconds of daily-checker's pass, seconds to
    drain the events once published)."""
    mb = rows * ROW_BYTES / 1e6
    sftp = storage == "sftp"
    moved = mb * (1 + OUT_FRACTION)
    server = (mb / SFTP_READ_MB_S + mb * OUT_FRACTION / SFTP_WRITE_MB_S) if sftp else 0
    # One replica handles one event at a time, on one core.
    cpu_drop = (EVENT_CPU["file-transformer"] + mb * CLEAN_CPU_PER_MB +
                (moved * SFTP_CLIENT_CPU_PER_MB if sftp else 0))
    stages = {
        # K replicas, but never more CPU than the nodes they run on have.
        "file-transformer replicas": min(replicas, cores) / cpu_drop,
        # status-checker holds the state: one replica (events.md), its CPU
        # limited to 500m in deploy/k8s/overlays/standalone.
        "status-checker": status_cores / EVENT_CPU["status-checker"],
        # One stream, its writes on its leader.
        "NATS (stream leader)": nats_cores / EVENT_CPU["nats-server"],
    }
    if storage == "sftp":
        stages["SFTP server"] = sftp_servers * sftp_cores / server
    rate = min(stages.values())
    bottleneck = min(stages, key=stages.get)
    check = clients * CHECK_S_PER_CLIENT[storage]
    # The checker publishes as it goes: its time overlaps the draining, and
    # the last drop still takes one whole drop time after its event.
    drain = clients / rate + cpu_drop
    seconds = max(check, clients / rate) + cpu_drop
    if check > clients / rate:
        bottleneck = f"daily-checker's pass, then {bottleneck}"
    return seconds, bottleneck, stages, check, drain


def human(seconds):
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table():
    print(f"{'clients':>7} {'rows/drop':>9} {'MB/drop':>7} {'replicas':>8} {'cores':>5} "
          f"{'SFTP srv':>8} {'check':>9} {'drain':>9} {'morning':>9}  first bottleneck")
    for clients, rows, replicas, cores, servers in (
            (50, 100000, 2, 4, 1),
            (1000, 10000, 2, 4, 1),
            (1000, 100000, 2, 4, 1),
            (1000, 100000, 8, 16, 1),
            (1000, 100000, 8, 16, 4),
            (5000, 100000, 32, 64, 4),
            (5000, 100000, 32, 64, 16),
            (5000, 1000000, 32, 64, 16),
            (20000, 20, 8, 16, 4),
            (200000, 20, 32, 64, 16)):
        seconds, neck, _, check, drain = predict(clients, rows, replicas, cores, "sftp", servers)
        print(f"{clients:>7} {rows:>9} {rows * ROW_BYTES / 1e6:>7.2f} {replicas:>8} {cores:>5} "
              f"{servers:>8} {human(check):>9} {human(drain):>9} {human(seconds):>9}  {neck}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--clients", type=int)
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("-k", "--replicas", type=int, default=2)
    ap.add_argument("--cores", type=float, default=2, help="cores the replicas share")
    ap.add_argument("--storage", choices=("file", "sftp"), default="sftp")
    ap.add_argument("--sftp-servers", type=int, default=1)
    args = ap.parse_args()
    if args.clients is None:
        table()
        return 0
    seconds, neck, stages, check, drain = predict(args.clients, args.rows, args.replicas, args.cores,
                                    args.storage, args.sftp_servers)
    for name, rate in stages.items():
        print(f"  {name:<28} {rate:10.1f} drops/s")
    print(f"  daily-checker's pass {human(check)}, draining once published {human(drain)}")
    print(f"predicted: {human(seconds)} for {args.clients} drops of {args.rows} rows "
          f"({args.clients / (seconds):.2f} drops/s), first bottleneck: {neck}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
