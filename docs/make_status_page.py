"""Makes docs/status-page.png from a real run of the pipeline.

Four clients drop a daily orders file for each of the last 28 order dates
(US1 a French Excel export, US2 and US10 US exports, US3 a client whose
export loses a column on some days); every date goes through the real
workers (daily-checker --once, file-transformer, status-checker) on a local
nats-server, then headless Chromium screenshots status-checker's GET /.

    python3 docs/make_status_page.py [BUILD_DIR] [OUT.png]
"""

import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("DX_BUILD_DIR", sys.argv[1] if len(sys.argv) > 1
                      else os.path.join(HERE, "..", "build"))
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "status-page.png")

import harness  # noqa: E402

US_HEADER = ("order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,"
             "unit_price,currency,status\n")
FR_HEADER = ("Order ID;Date commande;Client;E-mail;SKU;Produit;Quantité;Prix unitaire;Devise;"
             "Statut\r\n")
PRODUCTS = [("MUG-01", "Mug"), ("TEA-02", "Green tea"), ("POT-03", "Teapot"),
            ("CUP-04", "Cup"), ("LAMP-1", "Desk lamp"), ("BULB-2", "Bulb")]


def us_rows(rng, prefix, date, n):
    rows = []
    for i in range(n):
        sku, name = rng.choice(PRODUCTS)
        day = date if rng.random() > 0.3 else f"{date}T{rng.randint(0, 23):02d}:15:00Z"
        qty = rng.randint(1, 4) if rng.random() > 0.012 else "two"
        rows.append(f"{prefix}-{date}-{i},{day},K-{rng.randint(1, 900)},"
                    f"k{i}@example.com,{sku},{name},{qty},"
                    f"{rng.randint(2, 90)}.{rng.randint(0, 99):02d},USD,{rng.choice(['shipped', 'delivered', 'pending'])}\n")
    rows += rng.sample(rows, max(0, int(n * 0.004)))  # re-exported lines
    return "".join(rows)


def fr_rows(rng, date, n):
    dd = f"{date[8:]}/{date[5:7]}/{date[:4]}"
    rows = []
    for i in range(n):
        sku, name = rng.choice(PRODUCTS)
        day = dd if rng.random() > 0.015 else "31/02/" + date[:4]
        rows.append(f"FR-{date}-{i};{day};C-{rng.randint(1, 900)};client{i}@example.com ;{sku};"
                    f"{name};{rng.randint(1, 3)};{rng.randint(2, 60)},{rng.randint(0, 99):02d} €;"
                    f"EUR;{rng.choice(['Livrée', 'en cours', 'annulée'])}\r\n")
    rows += rng.sample(rows, max(0, int(n * 0.003)))
    return "".join(rows)


def main():
    rng = random.Random(20261124)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    dates = [(today - datetime.timedelta(days=d)).isoformat() for d in range(27, -1, -1)]
    # The operator's time zone: the page shows it with its offset.
    p = harness.Pipeline("statuspage", extra_env={"TZ": "Europe/Paris"})
    try:
        p.start()
        # Two clients with a profile and no drop yet: US4 expected half an
        # hour ago (late), US5 later today (waiting).
        now = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Paris"))
        minutes = now.hour * 60 + now.minute
        c = p.client()
        for client, at in (("US4", max(minutes - 30, 0)), ("US5", min(minutes + 180, 23 * 60 + 59))):
            c.kv_put("clients", client, json.dumps(
                {"expected_drop_time": f"{at // 60:02d}:{at % 60:02d}", "notify": "webhook:ops"}))
        c.close()
        for k, date in enumerate(dates):
            weekend = datetime.date.fromisoformat(date).weekday() >= 5
            scale = 0.55 if weekend else 1.0
            p.drop("US1", "input.csv", (FR_HEADER + fr_rows(
                rng, date, int(rng.randint(1300, 1600) * scale))).encode("utf-8"))
            p.drop("US2", "input.csv", US_HEADER + us_rows(
                rng, "US", date, int(rng.randint(800, 1000) * scale)))
            p.drop("US10", "input.csv", US_HEADER + us_rows(
                rng, "X", date, int(rng.randint(200, 300) * scale)))
            # US3's export drops a column on two days, the last one today.
            if k in (12, 27):
                p.drop("US3", "input.csv", "order_id,order_date,customer_id\nQ-1,x,y\n")
            else:
                p.drop("US3", "input.csv", US_HEADER + us_rows(
                    rng, "Q", date, int(rng.randint(600, 750) * scale)))
            code, out = p.run_checker("--once", "--date", date)
            if code != 0:
                raise RuntimeError(f"daily-checker for {date}: {out[-400:]}")
            ok = ["US1", "US2", "US10"] + ([] if k in (12, 27) else ["US3"])
            p.wait_runs(ok, date, timeout=120)
            # FileReady goes out before the drop is archived: wait for the
            # archive before the next drop of the same name.
            harness.wait_until(lambda: not any(
                os.path.exists(os.path.join(p.inbox, c, "input.csv"))
                for c in ("US1", "US2", "US3", "US10")), what=f"drops of {date} archived")
        harness.wait_until(lambda: len(p.status()["failures"]) == 2, what="US3's failures")
        profile = tempfile.mkdtemp(prefix="chromium-", dir=p.workdir)
        subprocess.run(
            ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--window-size=1280,1000", f"--screenshot={OUT}",
             f"http://127.0.0.1:{p.ports['status-checker']}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90, check=True)
        print(f"wrote {OUT}")
    finally:
        p.stop()
        shutil.rmtree(p.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
