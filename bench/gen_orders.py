#!/usr/bin/env python3
"""Generates a realistic, messy client order export of N data rows.

Seeded and reproducible: the same arguments always give the same bytes.
The default looks like a French Excel export: Windows-1252, ';' delimited,
CRLF line ends, French headers with accents, decimal commas, dates as
DD/MM/YYYY.  Faults come in roughly the proportions seen in client drops:

  ~2.0 %  exact duplicates of an earlier valid row (some differing only in
          spacing or letter case, which normalise to the same row)
  ~1.0 %  invalid dates (31/02, month 13, two-digit years, "N/A")
  ~0.6 %  invalid quantities (0, -1, 1,5, "deux")
  ~0.5 %  invalid prices ("N/A", "12,345", "-5,00")
  ~0.2 %  missing order_id, ~0.2 % missing unit_price
  ~0.2 %  rows cut or padded (wrong field count)
  ~1.0 %  blank lines and ";;;;" rows (not data rows)
and everywhere: padding, doubled spaces, no-break spaces as thousands
separators, euro signs, quoted names with ';', '"' and line breaks, status
spellings in French and English, mixed date forms with and without times.

The expected counts (rows_in, rows_out, rows_rejected, rows_duplicate, and
rejects by reason) are printed as JSON on stderr, so a run of the cleaner
can be checked against what was injected.

Usage: gen_orders.py ROWS [--seed N] [--encoding cp1252|utf-8|utf-8-sig]
                          [--delimiter ';'] [--newline crlf|lf|cr] OUT
Python 3 standard library only.
"""

import argparse
import json
import random
import sys

HEADER = ["N° commande", "Date commande", "Code client", "E-mail", "Réf. produit",
          "Désignation", "Quantité", "Prix unitaire", "Devise", "Statut", "Commentaire"]

PRODUCTS = [
    "Chaise en chêne", "Table basse \"Scandi\"", "Lampe à poser", "Coussin; lin lavé",
    "Étagère murale", "Tapis berbère 160x230", "Miroir doré", "Bougie parfumée",
    "Vase en grès", "Plaid laine mérinos", "Fauteuil crème", "Horloge murale Ø40",
    "Desk lamp", "Coffee mug", "Organic cotton tee", "Cafetière à piston",
]
FIRST = ["marie", "jean", "lucie", "hugo", "chloé", "louis", "emma", "noah", "léa", "adam"]
LAST = ["martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand"]
DOMAINS = ["example.fr", "mail.com", "orange.fr", "gmail.com", "free.fr"]
STATUSES = [("Livrée", 30), ("livree", 10), ("LIVRÉE", 3), ("En cours", 15),
            ("expédiée", 12), ("Annulée", 5), ("payée", 8), ("Delivered", 5),
            (" shipped ", 3), ("remboursée", 2), ("En litige", 2), ("", 5)]
COMMENTS = ["", "", "", "", "", "", "livraison express", "cadeau; emballer",
            "Client  fidèle", "rappeler\navant livraison"]


def weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.uniform(0, total)
    for value, w in pairs:
        x -= w
        if x <= 0:
            return value
    return pairs[-1][0]


def fmt_date(rng, y, m, d):
    hh, mi, ss = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    form = rng.random()
    if form < 0.50:
        return f"{d:02d}/{m:02d}/{y}"
    if form < 0.70:
        return f"{d:02d}/{m:02d}/{y} {hh:02d}:{mi:02d}"
    if form < 0.85:
        return f"{y}-{m:02d}-{d:02d}"
    if form < 0.90:
        return f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}Z"
    if form < 0.95:
        return f"{d}.{m}.{y}"
    return f"{d:02d}-{m:02d}-{y} {hh:02d}:{mi:02d}:{ss:02d}"


def fmt_price(rng, cents, nbsp):
    units, frac = divmod(cents, 100)
    form = rng.random()
    if form < 0.45:
        return f"{units},{frac:02d}"
    if form < 0.55:
        return f"{units:,}".replace(",", nbsp) + f",{frac:02d}"
    if form < 0.62:
        return f"{units:,}".replace(",", ".") + f",{frac:02d}"
    if form < 0.80:
        return f"{units},{frac:02d} €"
    if form < 0.92:
        return f"{units}.{frac:02d}"
    return f"{units:,}.{frac:02d}"


def pad(rng, value):
    r = rng.random()
    if r < 0.05:
        return "  " + value
    if r < 0.10:
        return value + " "
    return value


def new_order(rng, order_no):
    """The fields all lines of one order share."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first}.{last}@{rng.choice(DOMAINS)}"
    if rng.random() < 0.1:
        email = email.upper()
    return {
        "id": f"CMD-{order_no:07d}",
        "date": fmt_date(rng, rng.choice([2023, 2024]), rng.randint(1, 12), rng.randint(1, 28)),
        "customer": f"CLI{rng.randint(1, 20000):05d}",
        "email": email,
    }


def valid_row(rng, order, nbsp):
    name = rng.choice(PRODUCTS)
    if rng.random() < 0.03:
        name = name.replace(" ", "  ", 1)
    price = fmt_price(rng, rng.choice([rng.randint(50, 9999), rng.randint(10000, 250000)]), nbsp)
    currency = weighted(rng, [("EUR", 80), ("", 10), ("eur", 5), ("€", 5)])
    return [
        order["id"],
        pad(rng, order["date"]),
        order["customer"],
        pad(rng, order["email"]),
        f"SKU-{rng.randint(1, 5000):05d}",
        name,
        pad(rng, str(weighted(rng, [(1, 60), (2, 20), (3, 10), (rng.randint(4, 50), 10)]))),
        price,
        currency,
        weighted(rng, STATUSES),
        rng.choice(COMMENTS),
    ]


def respell(rng, row):
    """A copy of a valid row that cleans to the same bytes."""
    row = list(row)
    choice = rng.random()
    if choice < 0.5:
        return row
    if choice < 0.75:
        row[3] = " " + row[3].swapcase() + "  "
    else:
        row[5] = "  " + row[5] + " "
    return row


FAULTS = [
    ("invalid_date", 1.0, lambda rng: rng.choice(
        ["31/02/2024", "15/13/2024", "05/03/24", "N/A", "2024-02-30", "32/01/2023"]), 1),
    ("invalid_quantity", 0.6, lambda rng: rng.choice(["0", "-1", "1,5", "deux", "3 pièces"]), 6),
    ("invalid_price", 0.5, lambda rng: rng.choice(["N/A", "12,345", "-5,00", "gratuit", "1.2.3,4"]), 7),
    ("missing_order_id", 0.2, lambda rng: "", 0),
    ("missing_unit_price", 0.2, lambda rng: "   ", 7),
]


def quote(field, delimiter):
    if any(c in field for c in (delimiter, '"', "\n", "\r")) or field != field.strip(" "):
        return '"' + field.replace('"', '""') + '"'
    return field


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--encoding", default="cp1252", choices=["cp1252", "utf-8", "utf-8-sig"])
    ap.add_argument("--delimiter", default=";")
    ap.add_argument("--newline", default="crlf", choices=["crlf", "lf", "cr"])
    args = ap.parse_args()

    rng = random.Random(args.seed)
    nl = {"crlf": "\r\n", "lf": "\n", "cr": "\r"}[args.newline]
    delim = args.delimiter
    nbsp = "\u00a0" if args.encoding == "cp1252" else rng.choice(["\u00a0", "\u202f"])
    expect = {"rows_in": 0, "rows_out": 0, "rows_rejected": 0, "rows_duplicate": 0,
              "rejects": {}}
    recent = []
    order_no = 0
    order = None
    lines_in_order = 0
    chunks = [delim.join(quote(h, delim) for h in HEADER) + nl]

    def reject(reason):
        expect["rows_rejected"] += 1
        expect["rejects"][reason] = expect["rejects"].get(reason, 0) + 1

    while expect["rows_in"] < args.rows:
        r = rng.random() * 100
        if r < 1.0:
            chunks.append(rng.choice(["", "   ", delim * (len(HEADER) - 1)]) + nl)
            continue
        if lines_in_order == 0:
            order_no += 1
            order = new_order(rng, order_no)
            lines_in_order = weighted(rng, [(1, 60), (2, 25), (3, 10), (4, 5)])
        lines_in_order -= 1
        expect["rows_in"] += 1
        r = rng.random() * 100
        if r < 2.0 and recent:
            row = respell(rng, rng.choice(recent))
            expect["rows_duplicate"] += 1
        elif r < 4.7:
            row = valid_row(rng, order, nbsp)
            x = (r - 2.0) / 2.7 * sum(f[1] for f in FAULTS)
            for reason, weight, value, column in FAULTS:
                x -= weight
                if x <= 0:
                    break
            row[column] = value(rng)
            reject(reason)
        elif r < 4.9:
            row = valid_row(rng, order, nbsp)
            row = row[:-3] if rng.random() < 0.5 else row + ["x", "y"]
            reject("field_count")
        else:
            row = valid_row(rng, order, nbsp)
            expect["rows_out"] += 1
            recent.append(row)
            if len(recent) > 1000:
                recent.pop(0)
        chunks.append(delim.join(quote(f, delim) for f in row) + nl)
        if len(chunks) >= 10000:
            chunks = ["".join(chunks)]

    # Line breaks inside quoted cells stay LF whatever the row separator,
    # as Excel writes them.
    data = "".join(chunks)
    with open(args.out, "wb") as f:
        f.write(data.encode(args.encoding))
    json.dump(expect, sys.stderr, sort_keys=True)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()
