"""./scripts/demo: one daily run of the whole pipeline on this machine.

Starts nats-server (JetStream, temporary store, free loopback port) and an
OpenSSH sshd (generated host and user keys, free loopback port) serving a
temporary tree, writes sample drops for US1 and US2 into its inbox, starts
status-checker and file-transformer with INBOX_URL and DEPOT_URL on sftp://
(as DataRetailX runs them), gives US2 (a US export with MM/DD/YYYY dates)
its client profile with `dxctl client set` (date_order MDY), runs
`daily-checker --once`, waits until status-checker reports both clients,
prints the status JSON, the output paths and both clean files, and stops
everything it started (also on failure or Ctrl-C).
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
os.environ.setdefault("DX_BUILD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "build"))

import harness  # noqa: E402
from dxctl_run import dxctl  # noqa: E402
from sshd import Sshd  # noqa: E402

US1 = (
    "Order ID;Date commande;Client;E-mail;SKU;Produit;Quantité;Prix unitaire;Devise;Statut\r\n"
    "FR-1001;24/11/2026 09:12;C-77;Anne.Martin@Example.com ;MUG-01;Mug  émaillé;2;12,50 €;EUR;"
    "Livrée\r\n"
    "FR-1002;24/11/2026;C-78;paul@example.com;TEA-02;Thé vert;1;4,20;EUR;en cours\r\n"
    "FR-1002;24/11/2026;C-78;paul@example.com;TEA-02;Thé vert;1;4,20;EUR;en cours\r\n"
    "FR-1003;31/02/2026;C-79;zoe@example.com;POT-03;Théière;1;39,90;EUR;livrée\r\n"
    "FR-1004;24/11/2026;C-80;leo@example.com;CUP-04;Tasse;deux;6,00;EUR;annulée\r\n"
)

US2 = (
    "order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,"
    "unit_price,currency,status\n"
    "US-1,2026-11-24T08:15:00Z,K-1,kim@example.com,LAMP-1,Desk lamp,1,\"1,234.50\",USD,shipped\n"
    "US-2,2026-11-24,K-2,lee@example.com,BULB-2,Bulb,4,3.25,USD,delivered\n"
    "US-3,11/24/2026,K-3,max@example.com,CORD-3,Cord,1,2.00,USD,delivered\n"
)

ORDER_DATE = "2026-11-24"


def main():
    server = Sshd()
    server.start()
    os.makedirs(server.path("inbox"))
    os.makedirs(server.path("depot"))
    p = harness.Pipeline("demo", inbox_url=server.url("inbox"), depot_url=server.url("depot"),
                         extra_env=dict(server.env(), DROP_MIN_AGE="1"))
    # The workers reach the folders through sshd; the demo writes and shows
    # them on disk.
    p.inbox = server.path("inbox")
    p.depot = server.path("depot")
    print(f"demo workdir: {p.workdir}")
    print(f"sshd on 127.0.0.1:{server.port}; INBOX_URL={p.inbox_url} DEPOT_URL={p.depot_url}")
    ok = False
    try:
        p.drop("US1", "input.csv", US1.encode("utf-8"))
        p.drop("US2", "input.csv", US2)
        p.start()
        print(f"nats-server on {p.nats.url}; status-checker on "
              f"http://127.0.0.1:{p.ports['status-checker']}/status")
        # US2 writes US dates (11/24/2026): its profile says so, in the
        # clients bucket, with no restart; without it that row is rejected.
        code, out, err = dxctl(p, "client", "set", "US2", "date_order=MDY",
                               "default_currency=USD", 'description="US export, MM/DD/YYYY"')
        if code != 0:
            raise RuntimeError(f"dxctl client set exited {code}: {err}")
        print(f"$ dxctl client set US2 date_order=MDY default_currency=USD ...\n{out}", end="")
        code, out, err = dxctl(p, "client", "list")
        print(f"$ dxctl client list\n{out}")
        code, out = p.run_checker("--once", "--date", ORDER_DATE)
        for line in out.splitlines():
            if "order-date published" in line:
                print(f"daily-checker: {line}")
        if code != 0:
            raise RuntimeError(f"daily-checker exited {code}: {out[-500:]}")
        status = p.wait_runs(["US1", "US2"], ORDER_DATE, timeout=60)
        print(json.dumps(status, indent=2))
        print("\noutputs:")
        for client in ("US1", "US2"):
            for name in status["clients"][client]["files"]:
                print(f"  {p.depot_url}/{name}  (on disk: {os.path.join(p.depot, name)})")
        for client, name in (("US1", "input.csv"), ("US1", "input.rejects.csv"),
                             ("US2", "input.csv")):
            print(f"\n{p.depot_url}/{client}/{ORDER_DATE}/{name}:")
            with open(os.path.join(p.depot, client, ORDER_DATE, name), encoding="utf-8") as f:
                print(f.read(), end="")
        us2 = status["clients"]["US2"]["dates"][ORDER_DATE]
        if us2["rows_out"] != 3 or us2.get("profile_revision", 0) < 1:
            raise RuntimeError(f"US2 was not cleaned under its MDY profile: {us2}")
        print(f"\nUS2: 3 rows out of 3 under profile revision {us2['profile_revision']} "
              f"(11/24/2026 read as MDY)")
        ok = True
    except Exception as e:  # noqa: BLE001 - report any failure, then clean up
        print(f"demo failed: {e}", file=sys.stderr)
        p.dump_logs()
    finally:
        p.stop()
        if not ok:
            print(f"----- sshd -----\n{server.log_tail()}", file=sys.stderr)
        server.stop()
        shutil.rmtree(os.path.join(p.workdir, "jetstream"), ignore_errors=True)
    print(f"\ndemo {'succeeded' if ok else 'FAILED'}; inbox and depot kept in {server.path()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
