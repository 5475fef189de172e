// The Polars peer of the cleaning benchmark: the rules of clean_pandas.py
// (those the generated files exercise; see peer_rules.mjs) as Polars
// expressions, the way a data engineer would write them with nodejs-polars.
//
//   node bench/clean_polars.mjs IN OUT REJECTS
//
// Writes the clean rows in input order and the rejects with their reason,
// and prints {"rows_in", "rows_out", "rows_rejected", "rows_duplicate",
// "total_cents"} as JSON.  Traps met on the way: str.strptime parses with
// exact=false, so 31/02/2026 silently becomes a date; dates are checked by
// arithmetic here instead.  Blank lines come back as all-null rows and are
// dropped like ";;;;" rows.  A missing trailing field comes back as ""
// or as null depending on the row, so the field count is found with a
// sentinel field appended to every record (record ends are CRLF in the
// generated files; line breaks inside quoted cells are LF).  readCSV knows
// UTF-8 only: the drop is transcoded first (peer_rules.transcodeDrop), inside the
// timed run.
import {unlinkSync} from "node:fs";

import pl from "nodejs-polars";

import {COLUMNS, DMY, EURO_PREFIX, EURO_SUFFIX, MONEY, WS, YMD, report, transcodeDrop} from "./peer_rules.mjs";

const [input, output, rejects] = process.argv.slice(2);
if (!rejects) {
    console.error("usage: clean_polars.mjs IN OUT REJECTS");
    process.exit(2);
}
const END = "\u0001";
const EXTRA = ["extra_1", "extra_2", "extra_3"];
const schema = Object.fromEntries([...COLUMNS, ...EXTRA].map((c) => [c, pl.Utf8]));
const utf8 = output + ".utf8.csv";
transcodeDrop(input, utf8, (text) => text.replaceAll("\r\n", ";" + END + "\r\n"));
const raw = pl.readCSV(utf8, {
    sep: ";", quoteChar: '"', hasHeader: false, skipRows: 1, schema, missingIsNull: false,
    numThreads: 1,
});

const col = pl.col;
const fold = (c) => pl.when(col(c).eq(pl.lit(END))).then(pl.lit("")).otherwise(col(c))
    .fillNull("").str.replaceAll(WS, " ").str.stripChars(" ").alias(c);
const is = (c, v) => col(c).fillNull("").eq(pl.lit(v));
const int = (e) => e.cast(pl.Int64, false);
const parts = "^(\\d+)\\D(\\d+)\\D(\\d+)(?:[ Tt](\\d{1,2}):(\\d{2})(?::(\\d{2}))?)?";
const part = (i) => int(col("order_date").str.extract(parts, i));
const firstOf = (group) => MONEY.map((m) => col("bare").str.extract(m, group))
    .reduce((a, b) => a.fillNull(b));

// Exactly 11 fields, or more when the extra ones are empty.
let df = raw.withColumns(
    is("extra_1", END).or(is("extra_1", "").and(is("extra_2", END)
        .or(is("extra_2", "").and(is("extra_3", END))))).alias("field_ok"),
    ...COLUMNS.map(fold));
df = df.filter(pl.anyHorizontal(COLUMNS.map((c) => col(c).neq(pl.lit("")))));
df = df.withColumns(
    col("order_date").str.contains(YMD).alias("ymd"),
    col("order_date").str.contains(DMY).alias("dmy"),
    part(1).alias("p1"), part(2).alias("m"), part(3).alias("p3"),
    part(4).alias("hh"), part(5).alias("mi"), part(6).alias("ss"),
    col("unit_price").str.replace(EURO_PREFIX, "").str.replace(EURO_SUFFIX, "")
        .str.stripChars(" ").alias("bare"));
df = df.withColumns(
    pl.when(col("ymd")).then(col("p1")).otherwise(col("p3")).alias("y"),
    pl.when(col("ymd")).then(col("p3")).otherwise(col("p1")).alias("d"),
    firstOf(1).alias("price_int"), firstOf(2).fillNull("").alias("price_frac"));
const y = col("y");
const leap = y.modulo(4).eq(0).and(y.modulo(100).neq(0).or(y.modulo(400).eq(0)));
const dim = pl.when(col("m").isIn([4, 6, 9, 11])).then(pl.lit(30))
    .when(col("m").eq(2)).then(pl.when(leap).then(pl.lit(29)).otherwise(pl.lit(28))).otherwise(pl.lit(31));
df = df.withColumns(
    col("ymd").or(col("dmy")).and(col("m").gtEq(1)).and(col("m").ltEq(12)).and(y.gtEq(1000))
        .and(col("d").gtEq(1)).and(col("d").ltEq(dim))
        .and(col("hh").fillNull(0).ltEq(23)).and(col("mi").fillNull(0).ltEq(59))
        .and(col("ss").fillNull(0).ltEq(59)).fillNull(false).alias("date_ok"),
    col("quantity").str.contains("^[0-9]+$").and(col("quantity").str.stripCharsStart("0").neq(pl.lit("")))
        .and(col("quantity").str.lengths().lt(19)).alias("qty_ok"));
df = df.withColumns(
    pl.when(col("field_ok").not()).then(pl.lit("field_count"))
        .when(col("order_id").eq(pl.lit(""))).then(pl.lit("missing_order_id"))
        .when(col("order_date").eq(pl.lit(""))).then(pl.lit("missing_order_date"))
        .when(col("date_ok").not()).then(pl.lit("invalid_date"))
        .when(col("quantity").eq(pl.lit(""))).then(pl.lit("missing_quantity"))
        .when(col("qty_ok").not()).then(pl.lit("invalid_quantity"))
        .when(col("unit_price").eq(pl.lit(""))).then(pl.lit("missing_unit_price"))
        .when(col("price_int").isNull()).then(pl.lit("invalid_price"))
        .otherwise(pl.lit(null)).alias("reason"));

unlinkSync(utf8);
const rejected = df.filter(col("reason").isNotNull());
const good = df.filter(col("reason").isNull()).withColumns(
    int(col("quantity").str.stripCharsStart("0")).alias("qty"),
    int(col("price_int").str.replaceAll("[ .,']", "")).mul(100)
        .add(int(col("price_frac").str.padEnd(2, "0"))).alias("cents"),
    col("customer_email").str.toLowerCase().alias("customer_email"),
    pl.when(col("currency").str.toUpperCase().isIn(["EUR", "EURO", "EUROS", "€"])
        .or(col("currency").eq(pl.lit("")).and(col("bare").neq(col("unit_price")))))
        .then(pl.lit("EUR")).otherwise(col("currency").str.toUpperCase()).alias("currency"),
    col("status").str.toLowerCase().alias("status"));
const key = ["order_id", "y", "m", "d", "hh", "mi", "ss", "customer_id", "customer_email",
    "product_sku", "product_name", "qty", "cents", "currency", "status", "comment"];
const clean = good.unique({subset: key, keep: "first", maintainOrder: true})
    .withColumns(col("qty").mul(col("cents")).alias("total_cents"));
clean.select(
    "order_id",
    pl.concatString([int(y).cast(pl.Utf8).str.zFill(4), col("m").cast(pl.Utf8).str.zFill(2),
        col("d").cast(pl.Utf8).str.zFill(2)], "-").alias("order_date"),
    "customer_id", "customer_email", "product_sku", "product_name", col("qty").alias("quantity"),
    col("cents").div(100).floor().cast(pl.Int64).alias("unit_euros"), col("cents").modulo(100).alias("unit_cents"),
    "currency", "status", "hh", "mi", "ss", "total_cents", "comment").writeCSV(output);
rejected.select(pl.lit(0).alias("row"), "reason", ...COLUMNS).writeCSV(rejects);
report("polars", {
    rows_in: df.height, rows_out: clean.height, rows_rejected: rejected.height,
    rows_duplicate: good.height - clean.height,
    total_cents: Number(clean.getColumn("total_cents").sum()),
});
