#!/usr/bin/python3
"""The pandas reference: the cleaning rules of clean_run(), written the way a
pandas team would (read_csv, vectorised str methods, duplicated, to_csv), as
the yardstick of the benchmark.  Run with Debian's python3 (python3-pandas):

    /usr/bin/python3 bench/clean_pandas.py IN OUT REJECTS

Prints the counts as one JSON object, exit 1 with a reason when the file is
unusable.  The aliases and the status vocabulary are read from
workers/file-transformer/vocab.c so both implementations use the same words.
The clean output is byte for byte the engine's (run-clean-bench checks it);
the rejects hold the same rows and reasons.  Known simplifications, none of
which the generated files exercise: a quote in the middle of an unquoted
field is taken as opening a quoted section when numbering lines, and the
1 MiB / 4 MiB / 1024-column limits are not enforced.
"""

import csv
import io
import json
import os
import re
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_C = os.path.join(HERE, "..", "workers", "file-transformer", "vocab.c")
CANONICAL = ["order_id", "order_date", "customer_id", "customer_email", "product_sku",
             "product_name", "quantity", "unit_price", "currency", "status"]
REQUIRED = ["order_id", "order_date", "quantity", "unit_price"]
INT64_MAX = 2**63 - 1
# The formula guard (csvout_is_formula): a leading "'" for text cells that
# start with = + - @ TAB CR, or have = + - @ after leading blanks.
FORMULA = r"^(?:[\t\r]|[ \t\r\n]*[=+\-@])"
TEXT_COLUMNS = ["order_id", "customer_id", "customer_email", "product_sku", "product_name",
                "currency", "status"]

WS = "[ \t\n\v\f\r\u00a0\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
LATIN1 = ["a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
          "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss",
          "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
          "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y"]
FOLD = {0xAA: "a", 0xBA: "o", 0x152: "oe", 0x153: "oe", 0x160: "s", 0x161: "s", 0x178: "y",
        0x17D: "z", 0x17E: "z"}
FOLD.update({0xC0 + i: s for i, s in enumerate(LATIN1) if s})
# fold_lower(): ASCII, Latin-1 letters and Œ Š Ž Ÿ only, like the engine.
LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
LOWER.update({c: c + 32 for c in range(0xC0, 0xDF) if c != 0xD7})
LOWER.update({0x152: 0x153, 0x160: 0x161, 0x17D: 0x17E, 0x178: 0xFF})


def fail(reason):
    print(f"clean_pandas: invalid: {reason}", file=sys.stderr)
    sys.exit(1)


def fold_key(text):
    out, gap = [], False
    for ch in text:
        cp = ord(ch)
        if ch.isascii() and ch.isalnum():
            letters = ch.lower()
        else:
            letters = FOLD.get(cp)
        if not letters:
            gap = bool(out)
            continue
        if gap:
            out.append("_")
        gap = False
        out.append(letters)
    return "".join(out)


def load_vocab():
    source = open(VOCAB_C, encoding="utf-8").read()
    names = ["ORDER_ID", "ORDER_DATE", "CUSTOMER_ID", "CUSTOMER_EMAIL", "PRODUCT_SKU",
             "PRODUCT_NAME", "QUANTITY", "UNIT_PRICE", "CURRENCY", "STATUS", "ORDER_TIME"]
    columns = {k: (CANONICAL + ["order_time"])[names.index(c)]
               for k, c in re.findall(r'\{"([a-z0-9_]+)", VOCAB_([A-Z_]+)\}', source)}
    statuses = dict(re.findall(r'\{"([a-z_]+)", "([a-z]+)"\}', source))
    return columns, statuses


CP1252_HIGH = {0x80 + i: ch for i, ch in enumerate(
    bytes(range(0x80, 0xA0)).decode("cp1252", errors="replace")) if ch != "\ufffd"}


def decode(raw):
    """Row by row (line by line here): UTF-8 when valid, else Windows-1252,
    its five undefined bytes kept as the C1 controls, as the engine does."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    out = []
    for line in raw.splitlines(keepends=True):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode("latin-1").translate(CP1252_HIGH))
    return "".join(out)


def detect_delimiter(text):
    counts = {c: 0 for c in ",;\t|"}
    quoted = False
    for ch in text.lstrip("\r\n ")[:65536]:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "\r\n":
            break
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts.values())
    return next(c for c in ",;\t|" if counts[c] == best) if best else ","


def records(text, delim):
    """Physical start line and field count of each non-blank record."""
    lines = pd.Series(re.split(r"\r\n|\r|\n", text))
    odd = (lines.str.count('"') % 2).astype(bool)
    inside = odd.cumsum() % 2 == 1                    # a quote still open at line end
    starts = ~inside.shift(1, fill_value=False)
    rec = starts.cumsum()
    joined = lines.groupby(rec).agg("\n".join) if not starts.all() else lines.set_axis(rec)
    first = pd.Series(np.flatnonzero(starts.values) + 1, index=joined.index)
    bare = joined.str.replace(r'"(?:[^"]|"")*"', "", regex=True)
    blank = joined.str.strip(" \t" if delim != "\t" else " ") == ""
    fields = bare.str.count(re.escape(delim)) + 1
    return first[~blank].to_numpy(), fields[~blank].to_numpy()


def collapse(s):
    return s.str.replace("\ufeff", "", regex=False).str.replace(WS, " ", regex=True).str.strip(" ")


DATE = re.compile(
    r"(?:(?P<y1>\d{4})(?P<s1>[-/.])(?P<m1>\d{1,2})(?P=s1)(?P<d1>\d{1,2})"
    r"(?:[ Tt](?P<H1>\d{1,2}):(?P<M1>\d{2})(?::(?P<S1>\d{2})(?:\.\d{1,9})?)?"
    r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
    r"|(?P<d2>\d{1,2})(?P<s2>[-/.])(?P<m2>\d{1,2})(?P=s2)(?P<y2>\d{4})"
    r"(?: (?P<H2>\d{1,2}):(?P<M2>\d{2})(?::(?P<S2>\d{2})(?:\.\d{1,9})?)?)?)")
TIME = re.compile(r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d{1,9})?)?")
MONEY = [re.compile(p) for p in (
    r"(?P<i>\d+)(?:[.,](?P<f>\d{1,2}))?",
    r"(?P<i>\d{1,3}(?P<t>[ '])\d{3}(?:(?P=t)\d{3})*)(?:[.,](?P<f>\d{1,2}))?",
    r"(?P<i>\d{1,3}(?:\.\d{3})+),(?P<f>\d{1,2})",
    r"(?P<i>\d{1,3}(?:,\d{3})+)\.(?P<f>\d{1,2})",
    r"(?P<i>\d{1,3}(?:\.\d{3}){2,})(?P<f>)",
    r"(?P<i>\d{1,3}(?:,\d{3}){2,})(?P<f>)")]


def parse_dates(s):
    m = s.str.extract("^" + DATE.pattern + "$")
    y = m["y1"].fillna(m["y2"])
    mo, d = m["m1"].fillna(m["m2"]), m["d1"].fillna(m["d2"])
    iso = y + "-" + mo.str.zfill(2) + "-" + d.str.zfill(2)
    ok = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").notna() & (y.fillna("0") >= "1000")
    H, M, S = m["H1"].fillna(m["H2"]), m["M1"].fillna(m["M2"]), m["S1"].fillna(m["S2"])
    t_ok, time = times(H, M, S)
    return ok & t_ok, iso, time


def times(H, M, S):
    has = H.notna()
    S = S.fillna("00")
    ok = ~has | ((H.fillna("0").astype(int) <= 23) & (M.fillna("0").astype(int) <= 59)
                 & (S.astype(int) <= 59))
    time = (H.fillna("").str.zfill(2) + ":" + M.fillna("") + ":" + S).where(has, "")
    return ok, time


def parse_money(s):
    euro_re = r"^(?:€|[Ee][Uu][Rr])"
    prefix = s.str.contains(euro_re, regex=True)
    suffix = ~prefix & s.str.contains(r"(?:€|[Ee][Uu][Rr])$", regex=True)
    bare = s.str.replace(euro_re, "", regex=True).where(prefix, s)
    bare = bare.str.replace(r"(?:€|[Ee][Uu][Rr])$", "", regex=True).where(suffix, bare)
    bare = bare.str.strip(" ")
    ip = pd.Series(np.nan, index=s.index, dtype=object)
    fp = ip.copy()
    for rx in MONEY:
        m = bare.str.extract("^" + rx.pattern + "$")
        take = ip.isna() & m["i"].notna()
        ip[take], fp[take] = m["i"][take], m["f"][take]
    ok = ip.notna()
    digits = ip.fillna("0").str.replace(r"[ .,']", "", regex=True)
    frac = fp.fillna("").str.ljust(2, "0")
    text = (digits + frac).str.lstrip("0").replace("", "0")
    small = text.str.len() <= 18
    cents = pd.Series(0, index=s.index, dtype=object)
    cents[small] = text[small].astype(np.int64)
    cents[~small] = text[~small].map(int)
    ok &= cents <= INT64_MAX
    return ok, cents.where(ok, 0), (prefix | suffix)


def lower(s):
    return s.str.translate(LOWER)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: clean_pandas.py IN OUT REJECTS")
    raw = open(sys.argv[1], "rb").read()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        fail("unsupported encoding: UTF-16")
    nul = raw.find(b"\0")
    if nul >= 0:
        fail(f"binary input: NUL byte at offset {nul}")
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    text = decode(raw)
    delim = detect_delimiter(text)
    starts, nfields = records(text, delim)
    if len(starts) == 0:
        fail("empty file")
    df = pd.read_csv(io.StringIO(text), sep=delim, header=None, dtype=str,
                     keep_default_na=False, na_filter=False, skip_blank_lines=True,
                     names=range(int(nfields.max())), engine="c")
    empty_row = (df.apply(lambda c: c.str.strip(" \t")) == "").all(axis=1).to_numpy()
    df, starts, nfields = df[~empty_row], starts[~empty_row], nfields[~empty_row]
    if len(df) == 0:
        fail("empty file")
    header = list(df.iloc[0])
    ncols = int(nfields[0])
    while ncols > 0 and header[ncols - 1] == "":
        ncols -= 1
    header = header[:ncols]
    data, starts, nfields = df.iloc[1:].reset_index(drop=True), starts[1:], nfields[1:]

    aliases, statuses = load_vocab()
    keys = [fold_key(collapse(pd.Series([h]))[0]) for h in header]
    column_at, passed = {}, []
    for i, key in enumerate(keys):
        name = aliases.get(key)
        if name is None:
            passed.append(i)
        elif name in column_at:
            fail(f"duplicate column: {name} (columns {column_at[name] + 1} and {i + 1})")
        else:
            column_at[name] = i
    for name in REQUIRED:
        if name not in column_at:
            fail(f"missing required column: {name}")

    # Field counts: trailing empty fields past the header are fine.
    extra_ok = pd.Series(True, index=data.index)
    for c in range(ncols, data.shape[1]):
        extra_ok &= data[c] == ""
    field_ok = (nfields == ncols) | ((nfields > ncols) & extra_ok.to_numpy())

    cleaned = data.iloc[:, :ncols].apply(collapse)
    empty = pd.Series("", index=data.index)
    v = {name: cleaned[i] if (i := column_at.get(name)) is not None else empty
         for name in CANONICAL + ["order_time"]}

    date_ok, date, time = parse_dates(v["order_date"])
    tcol = v["order_time"].str.extract("^" + TIME.pattern + "$")
    use_tcol = (time == "") & (v["order_time"] != "")
    tcol_ok, tcol_time = times(tcol["H"], tcol["M"], tcol["S"])
    tcol_ok &= tcol["H"].notna()
    time = time.where(~use_tcol, tcol_time)
    q = v["quantity"]
    qd = q.str.lstrip("0")
    q_ok = q.str.fullmatch(r"\d+") & (qd != "") & (
        (qd.str.len() < 19) | ((qd.str.len() == 19) & (qd <= str(INT64_MAX))))
    qty = qd.where(q_ok, "1").replace("", "1").astype(np.int64)
    p_ok, cents, euro = parse_money(v["unit_price"])
    cur = v["currency"]
    cur_up = cur.str.translate({c: c - 32 for c in range(ord("a"), ord("z") + 1)})
    is_euro = cur.isin(["€"]) | cur_up.isin(["EUR", "EURO", "EUROS"])
    c64 = cents.astype(np.int64)
    overflow = (c64 > 0) & (qty > INT64_MAX // c64.where(c64 > 0, 1))

    conditions = [
        (~field_ok, "field_count"),
        (v["order_id"] == "", "missing_order_id"),
        (v["order_date"] == "", "missing_order_date"),
        (~date_ok, "invalid_date"),
        (use_tcol & ~tcol_ok, "invalid_time"),
        (q == "", "missing_quantity"),
        (~q_ok, "invalid_quantity"),
        (v["unit_price"] == "", "missing_unit_price"),
        (~p_ok, "invalid_price"),
        (euro & (cur != "") & ~is_euro, "currency_mismatch"),
        (overflow, "total_overflow"),
    ]
    reason = pd.Series(np.select([np.asarray(c, dtype=bool) for c, _ in conditions],
                                 [r for _, r in conditions], default=""), index=data.index)
    good = reason == ""

    status_key = v["status"].map({s: statuses.get(fold_key(s)) for s in v["status"].unique()})
    out = pd.DataFrame({
        "order_id": v["order_id"], "order_date": date, "customer_id": v["customer_id"],
        "customer_email": lower(v["customer_email"]), "product_sku": v["product_sku"],
        "product_name": v["product_name"], "quantity": qty.astype(str),
        "unit_price": money(c64), "currency": cur_up.where(~is_euro, "EUR").where(
            ~((cur == "") & euro), "EUR"),
        "status": status_key.fillna(lower(v["status"])), "order_time": time,
        "total": money(qty * c64.where(good, 0)),
    })
    names = list(out.columns)
    for i in passed:
        base = keys[i] or f"column_{i + 1}"
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
        out[name] = cleaned[i]
    for name in TEXT_COLUMNS + names[len(out.columns) - len(passed):]:
        out[name] = guard(out[name])
    out = out[good]
    dup = out.duplicated(keep="first")
    out = out[~dup]
    out.to_csv(sys.argv[2], index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)

    rej = data[~good].apply(guard)
    rej.insert(0, "reason", reason[~good])
    rej.insert(0, "line", starts[~good.to_numpy()])
    with open(sys.argv[3], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["line", "reason"] + list(guard(pd.Series(header, dtype=str))))
        for row, n in zip(rej.itertuples(index=False), nfields[~good.to_numpy()]):
            w.writerow(list(row)[:2 + n])
    counts = {"rows_in": len(data), "rows_out": len(out), "rows_rejected": int((~good).sum()),
              "rows_duplicate": int(dup.sum())}
    counts["counts_add_up"] = counts["rows_in"] == (
        counts["rows_out"] + counts["rows_rejected"] + counts["rows_duplicate"])
    print(json.dumps(counts))


def guard(s):
    """The column s with the formula guard applied to each cell."""
    return s.where(~s.str.contains(FORMULA, regex=True), "'" + s)


def money(cents):
    return (cents // 100).astype(str) + "." + (cents % 100).astype(str).str.zfill(2)


if __name__ == "__main__":
    main()
