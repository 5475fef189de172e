"""status-checker's page (GET /) as headless Chromium renders it (issue 7).

Runs a pipeline over two order dates within the page's 28-day window (three
clients: two good drops on the newer date, one on the older date, one drop
that fails permanently), then loads GET / once in headless Chromium (Debian
`chromium`), dumping the rendered DOM and taking a 1280x1000 screenshot in
the same run.  The DOM must show the clients, the counts, the failure and the
chart days with the right data; the PNG must be a real rendering of the page
(the chart's colours are in it).  Set DX_SAVE_SCREENSHOT=path to keep the
screenshot (that is how docs/status-page.png is made).
"""

import datetime
import html.parser
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import harness

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")

HEADER = ("order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,"
          "unit_price,currency,status\n")


def orders(prefix, date, good, duplicates=0, bad_dates=0):
    rows = [f"{prefix}-{i},{date},C{i},c{i}@example.com,SKU-{i % 7},Item {i},{1 + i % 3},"
            f"{3 + i % 11}.50,EUR,delivered\n" for i in range(1, good + 1)]
    rows += rows[:duplicates]
    rows += [f"{prefix}-X{i},2026-02-31,C{i},x{i}@example.com,SKU-1,Mug,1,2.00,EUR,pending\n"
             for i in range(bad_dates)]
    return HEADER + "".join(rows)


# ---------- a small DOM built from Chromium's --dump-dom output ----------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.texts = [], []

    def text(self):
        return "".join(t if isinstance(t, str) else t.text() for t in self.texts).strip()

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def walk(self):
        for c in self.children:
            yield c
            yield from c.walk()

    def find_all(self, tag=None, cls=None, **attrs):
        """Descendants by tag, class and exact attribute values (data_x for data-x)."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.walk()
                if (tag is None or n.tag == tag) and (cls is None or cls in n.classes())
                and all(n.attrs.get(k) == v for k, v in want.items())]

    def find(self, tag=None, cls=None, **attrs):
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None


class DomBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        self.cur.texts.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        self.cur.texts.append(node)

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.texts.append(data)


def parse_dom(text):
    b = DomBuilder()
    b.feed(text)
    b.close()
    return b.root


# ---------- PNG: dimensions and the colours of the first rows ----------

def png_colours(data, max_rows):
    """(width, height, set of (r, g, b) in the first max_rows rows) of an 8-bit PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = ihdr
    channels = {2: 3, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unexpected PNG format {ihdr}")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    prev = bytearray(stride)
    colours = set()
    for y in range(min(height, max_rows)):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        colours.update(zip(line[0::channels], line[1::channels], line[2::channels]))
        prev = line
    return width, height, colours


def render(port, workdir):
    """Loads GET / in headless Chromium once: (rendered DOM text, PNG bytes, log)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    png = os.path.join(workdir, "page.png")
    res = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
         "--window-size=1280,1000", f"--screenshot={png}", "--dump-dom",
         f"http://127.0.0.1:{port}/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    with open(os.path.join(workdir, "chromium.log"), "wb") as f:
        f.write(res.stderr)
    data = b""
    if os.path.exists(png):
        with open(png, "rb") as f:
            data = f.read()
    return res.stdout.decode("utf-8", "replace"), data, res.returncode


def run_pipeline(p, t, old, new):
    p.drop("US1", "input.csv", orders("A", old, 40, duplicates=2, bad_dates=1))
    code, out = p.run_checker("--once", "--date", old)
    t.check(code == 0, f"daily-checker --once --date {old} (exit {code}: {out[-300:]})")
    p.wait_runs(["US1"], old)
    # FileReady goes out before the drop is archived: wait for the archive
    # before dropping a new file of the same name.
    harness.wait_until(lambda: not os.path.exists(os.path.join(p.inbox, "US1", "input.csv")),
                       what="US1's first drop archived")
    p.drop("US1", "input.csv", orders("A", new, 120, duplicates=3, bad_dates=4))
    p.drop("US2", "input.csv", orders("B", new, 75, bad_dates=2))
    p.drop("US3", "input.csv", "order_id,order_date\nZ-1,2026-11-24\n")
    code, out = p.run_checker("--once", "--date", new)
    t.check(code == 0, f"daily-checker --once --date {new} (exit {code}: {out[-300:]})")
    p.wait_runs(["US1", "US2"], new)
    return harness.wait_until(lambda: (lambda st: st if st["failures"] else None)(p.status()),
                              what="the US3 failure in the status")


def check_dom(dom, t, st, old, new, today):
    t.check(dom.find("title") is not None
            and dom.find("title").text() == "DataRetailX pipeline status", "page title")
    ids = {n.attrs["id"]: n for n in dom.walk() if "id" in n.attrs}
    for section in ("summary", "chart", "depot", "failures", "runs"):
        t.check(section in ids, f"section #{section} is rendered")
    if not all(s in ids for s in ("summary", "chart", "depot", "failures", "runs")):
        return
    t.check(ids["summary-clients"].text() == "3", "summary: 3 clients")
    t.check(ids["summary-files"].text() == f"{st['files_in_depot']:,}",
            f"summary: files in depot ({ids['summary-files'].text()} vs {st['files_in_depot']})")
    t.check(ids["summary-failures"].text() == "1", "summary: 1 failure")

    # Depot: one row per client, US3 marked failed, US1 showing its last run's counts.
    rows = {r.attrs["data-client-id"]: r for r in ids["depot"].find_all("tr", "client")}
    t.check(sorted(rows) == ["US1", "US2", "US3"], f"depot rows for US1..US3 ({sorted(rows)})")
    us1 = st["clients"]["US1"]["dates"][new]
    if "US1" in rows:
        r = rows["US1"]
        t.check(r.find("span", "ok") is not None, "US1 is ok")
        for cls in ("in", "out", "rejected", "duplicate"):
            cell = r.find("td", cls)
            want = f"{us1['rows_' + cls]:,}"
            t.check(cell is not None and cell.text() == want,
                    f"US1 {cls} cell shows {want} (got {cell.text() if cell else None})")
        files = r.find("td", "files")
        t.check(files is not None
                and files.text() == str(st["clients"]["US1"]["files_in_depot"]),
                "US1 files in depot")
    if "US3" in rows:
        t.check(rows["US3"].find("span", "failed") is not None, "US3 is marked failed")

    failures = ids["failures"].find_all("tr", "failure")
    t.check(len(failures) == 1 and failures[0].attrs.get("data-client-id") == "US3",
            f"one failure row, for US3 ({len(failures)})")
    if failures:
        reason = failures[0].find("td", "reason")
        t.check(reason is not None and "missing required column" in reason.text(),
                "the failure row gives the reason")
        t.check(failures[0].find("span", "permanent") is not None, "the failure is permanent")

    runs = ids["runs"].find_all("tr", "run")
    t.check(sorted((r.attrs["data-client-id"], r.attrs["data-order-date"]) for r in runs) ==
            sorted([("US1", old), ("US1", new), ("US2", new)]), "three run rows")

    # The chart: 28 days ending today, the run days carrying their sums.
    days = ids["chart"].find_all("g", "day")
    t.check(len(days) == 28, f"28 days in the chart ({len(days)})")
    t.check(days and days[-1].attrs.get("data-date") == today.isoformat(),
            f"the chart ends today ({days[-1].attrs.get('data-date') if days else None})")
    runs_new = [st["clients"][c]["dates"][new] for c in ("US1", "US2")]
    want = {old: [st["clients"]["US1"]["dates"][old]], new: runs_new}
    for date, day_runs in want.items():
        g = ids["chart"].find("g", "day", data_date=date)
        t.check(g is not None, f"g.day for {date}")
        if g is None:
            continue
        for key in ("rows_in", "rows_out", "rows_rejected"):
            attr = "data-" + key.replace("_", "-")
            expected = sum(r[key] for r in day_runs)
            t.check(g.attrs.get(attr) == str(expected),
                    f"{date} {attr} == {expected} (got {g.attrs.get(attr)})")
        t.check(g.attrs.get("data-failures") == ("1" if date == new else "0"),
                f"{date} failures")
        t.check(len(g.find_all("rect", "bar")) == 3, f"{date} has three bars")
    empty = [g for g in days if g.attrs.get("data-date") not in want]
    t.check(all(g.attrs.get("data-rows-in") == "0" for g in empty), "other days are empty")

    check_today(ids, t, st)

    # Self-contained: nothing is fetched from anywhere.
    external = [n.attrs for n in dom.walk() if n.tag in ("script", "link", "img", "iframe")
                or any(k in ("src", "srcset") for k in n.attrs)
                or (n.attrs.get("href") or "").startswith(("http:", "https:", "//"))]
    t.check(not external, f"no external asset ({external[:3]})")


def check_today(ids, t, st):
    """The Today panel (issue 14): first, one row per expected client with
    the state of its newest day from /status, in the order of "days"."""
    t.check("today" in ids, "section #today is rendered")
    if "today" not in ids:
        return
    main = next((n for n in ids["today"].parent.children if n.tag == "section"), None)
    t.check(main is ids["today"], "Today is the first panel")
    head = ids["today"].find("h2").text()
    t.check(st["today"] in head and "UTC" in head and st["utc_offset"] in head,
            f"the panel names today, the zone and its offset ({head})")
    newest = [(d["client_id"], d["state"]) for d in st["days"] if d["newest"]]
    rows = [(r.attrs.get("data-client-id"), r.attrs.get("data-state"))
            for r in ids["today"].find_all("tr", "day")]
    t.check(rows == newest and sorted(c for c, _ in rows) == ["US1", "US2", "US3"],
            f"one row per client, in the order of /status days ({rows} vs {newest})")
    for r in ids["today"].find_all("tr", "day"):
        badge = r.find("span", "badge")
        t.check(badge is not None and badge.text() == r.attrs.get("data-state"),
                f"{r.attrs.get('data-client-id')}: the state as a badge")


def check_png(t, data):
    t.check(len(data) > 0, "chromium wrote a PNG")
    if not data:
        return
    width, height, colours = png_colours(data, 600)
    t.check((width, height) == (1280, 1000), f"the screenshot is 1280x1000 ({width}x{height})")
    # Bars in the page's colours: --in, --out, --rej; the failure mark --bad.
    for name, rgb in (("in", (0x3d, 0x6f, 0xe0)), ("out", (0x1f, 0x9d, 0x6b)),
                      ("rejected", (0xe8, 0x73, 0x0c)), ("failure", (0xd9, 0x2d, 0x50))):
        t.check(rgb in colours, f"the screenshot shows the {name} colour")
    t.check(len(colours) > 50, f"the screenshot is not blank ({len(colours)} colours)")


def main():
    t = harness.TestRun("test_page_browser")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    old = (today - datetime.timedelta(days=9)).isoformat()
    new = (today - datetime.timedelta(days=2)).isoformat()
    with harness.pipeline_run(t, "page") as p:
        p.start()
        st = run_pipeline(p, t, old, new)
        code, body = harness.http_get(p.ports["status-checker"], "/")
        t.check(code == 200 and body.startswith(b"<!DOCTYPE html>"),
                f"GET / answers a page ({code})")
        text, png, rc = render(p.ports["status-checker"], p.workdir)
        t.check(rc == 0, f"chromium exits 0 (got {rc}; see chromium.log)")
        st = p.status()  # the same status the page was rendered from
        check_dom(parse_dom(text), t, st, old, new, today)
        check_png(t, png)
        if os.environ.get("DX_SAVE_SCREENSHOT") and png:
            shutil.copyfile(os.path.join(p.workdir, "page.png"), os.environ["DX_SAVE_SCREENSHOT"])
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
