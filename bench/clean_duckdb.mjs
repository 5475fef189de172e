// The DuckDB peer of the cleaning benchmark: the rules of clean_pandas.py
// (those the generated files exercise; see peer_rules.mjs) as one SQL
// script, the way a data engineer would write it with @duckdb/node-api.
//
//   node bench/clean_duckdb.mjs IN OUT REJECTS
//
// Writes the clean rows in input order and the rejects with their reason,
// and prints {"rows_in", "rows_out", "rows_rejected", "rows_duplicate",
// "total_cents"} as JSON.  Traps met on the way: a NULL in a comparison
// drops a row from both outputs, so every field is coalesced to '' first;
// a trim character set built per row costs seconds, so whitespace is folded
// with one regular expression; read_csv knows UTF-8, UTF-16 and Latin-1
// only (and refuses the euro sign of Windows-1252, 0x80, as Latin-1), so the
// file is first transcoded to UTF-8 next to OUT, inside the timed run.
import {unlinkSync} from "node:fs";

import {DuckDBInstance} from "@duckdb/node-api";
import {COLUMNS, DMY, EURO_PREFIX, EURO_SUFFIX, MONEY, WS, YMD, report, transcodeDrop} from "./peer_rules.mjs";

const [input, output, rejects] = process.argv.slice(2);
if (!rejects) {
    console.error("usage: clean_duckdb.mjs IN OUT REJECTS");
    process.exit(2);
}
const utf8 = output + ".utf8.csv";
transcodeDrop(input, utf8);
const q = (s) => "'" + s.replaceAll("'", "''") + "'";
const EXTRA = ["extra_1", "extra_2"];
const names = [...COLUMNS, ...EXTRA];
const fold = (c) => `trim(regexp_replace(coalesce(${c}, ''), ${q(WS)}, ' ', 'g'), ' ')`;
const parts = "(\\d+)\\D(\\d+)\\D(\\d+)(?:[ Tt](\\d{1,2}):(\\d{2})(?::(\\d{2}))?)?";
const moneyInt = MONEY.map((m) => `nullif(regexp_extract(bare, ${q(m)}, 1), '')`).join(", ");
const moneyFrac = MONEY.map((m) => `nullif(regexp_extract(bare, ${q(m)}, 2), '')`).join(", ");

const sql = `
CREATE TEMP TABLE raw AS
SELECT row_number() OVER () AS seq, *
FROM read_csv(${q(utf8)}, delim = ';', quote = '"', escape = '"', header = false, skip = 1,
              null_padding = true, nullstr = '\\x01', auto_detect = false, strict_mode = false,
              columns = {${names.map((n) => `'${n}': 'VARCHAR'`).join(", ")}});

CREATE TEMP TABLE folded AS
SELECT seq,
       order_id IS NOT NULL AND comment IS NOT NULL
           AND coalesce(extra_1, '') = '' AND coalesce(extra_2, '') = '' AS field_ok,
       ${COLUMNS.map((c) => `${fold(c)} AS ${c}`).join(",\n       ")}
FROM raw;

CREATE TEMP TABLE parsed AS
SELECT *,
       CASE WHEN ymd THEN y1 ELSE y3 END AS y, y2 AS m, CASE WHEN ymd THEN y3 ELSE y1 END AS d,
       (ymd OR dmy) AND y2 BETWEEN 1 AND 12 AND (CASE WHEN ymd THEN y1 ELSE y3 END) >= 1000
           AND (CASE WHEN ymd THEN y3 ELSE y1 END) BETWEEN 1 AND
               CASE WHEN y2 IN (4, 6, 9, 11) THEN 30
                    WHEN y2 = 2 THEN CASE WHEN (CASE WHEN ymd THEN y1 ELSE y3 END) % 4 = 0
                        AND ((CASE WHEN ymd THEN y1 ELSE y3 END) % 100 <> 0
                             OR (CASE WHEN ymd THEN y1 ELSE y3 END) % 400 = 0) THEN 29 ELSE 28 END
                    ELSE 31 END
           AND coalesce(hh, 0) <= 23 AND coalesce(mi, 0) <= 59 AND coalesce(ss, 0) <= 59 AS date_ok,
       regexp_full_match(quantity, '[0-9]+') AND ltrim(quantity, '0') <> ''
           AND length(ltrim(quantity, '0')) < 19 AS qty_ok,
       coalesce(${moneyInt}) AS price_int,
       coalesce(${moneyFrac}, '') AS price_frac
FROM (
    SELECT *,
           regexp_full_match(order_date, ${q(YMD)}) AS ymd,
           regexp_full_match(order_date, ${q(DMY)}) AS dmy,
           try_cast(regexp_extract(order_date, ${q(parts)}, 1) AS INTEGER) AS y1,
           try_cast(regexp_extract(order_date, ${q(parts)}, 2) AS INTEGER) AS y2,
           try_cast(regexp_extract(order_date, ${q(parts)}, 3) AS INTEGER) AS y3,
           try_cast(regexp_extract(order_date, ${q(parts)}, 4) AS INTEGER) AS hh,
           try_cast(regexp_extract(order_date, ${q(parts)}, 5) AS INTEGER) AS mi,
           try_cast(regexp_extract(order_date, ${q(parts)}, 6) AS INTEGER) AS ss,
           trim(regexp_replace(regexp_replace(unit_price, ${q(EURO_PREFIX)}, ''),
                               ${q(EURO_SUFFIX)}, ''), ' ') AS bare
    FROM folded
    WHERE NOT (${COLUMNS.map((c) => `${c} = ''`).join(" AND ")})
);

CREATE TEMP TABLE judged AS
SELECT *,
       CASE WHEN NOT field_ok THEN 'field_count'
            WHEN order_id = '' THEN 'missing_order_id'
            WHEN order_date = '' THEN 'missing_order_date'
            WHEN NOT date_ok THEN 'invalid_date'
            WHEN quantity = '' THEN 'missing_quantity'
            WHEN NOT qty_ok THEN 'invalid_quantity'
            WHEN unit_price = '' THEN 'missing_unit_price'
            WHEN price_int IS NULL THEN 'invalid_price'
       END AS reason
FROM parsed;

CREATE TEMP TABLE clean AS
SELECT min(seq) AS seq, order_id, y, m, d, hh, mi, ss, customer_id, customer_email, product_sku,
       product_name, qty, cents, currency, status, comment
FROM (
    SELECT seq, order_id, y, m, d, hh, mi, ss, customer_id, lower(customer_email) AS customer_email,
           product_sku, product_name, CAST(ltrim(quantity, '0') AS BIGINT) AS qty,
           CAST(regexp_replace(price_int, '[ .,'']', '', 'g') AS BIGINT) * 100
               + CAST(rpad(price_frac, 2, '0') AS BIGINT) AS cents,
           CASE WHEN upper(currency) IN ('EUR', 'EURO', 'EUROS', '€')
                     OR (currency = '' AND bare <> unit_price) THEN 'EUR'
                ELSE upper(currency) END AS currency,
           lower(status) AS status, comment
    FROM judged
    WHERE reason IS NULL
)
GROUP BY ALL;

COPY (SELECT order_id, printf('%04d-%02d-%02d', y, m, d) AS order_date, customer_id, customer_email,
             product_sku, product_name, qty AS quantity,
             printf('%d.%02d', cents // 100, cents % 100) AS unit_price, currency, status,
             CASE WHEN hh IS NULL THEN '' ELSE printf('%02d:%02d:%02d', hh, mi, coalesce(ss, 0)) END
                 AS order_time,
             printf('%d.%02d', qty * cents // 100, qty * cents % 100) AS total, comment
      FROM clean ORDER BY seq) TO ${q(output)} (HEADER, DELIMITER ',');
COPY (SELECT seq AS row, reason, ${COLUMNS.join(", ")} FROM judged WHERE reason IS NOT NULL
      ORDER BY seq) TO ${q(rejects)} (HEADER, DELIMITER ',');
`;

const db = await DuckDBInstance.create(":memory:", {threads: "1"});
const con = await db.connect();
await con.run(sql);
unlinkSync(utf8);
const counts = (await con.runAndReadAll(`
    SELECT (SELECT count(*) FROM judged) AS rows_in,
           (SELECT count(*) FROM clean) AS rows_out,
           (SELECT count(*) FROM judged WHERE reason IS NOT NULL) AS rows_rejected,
           (SELECT count(*) FROM judged WHERE reason IS NULL) - (SELECT count(*) FROM clean)
               AS rows_duplicate,
           (SELECT sum(qty * cents) FROM clean) AS total_cents`)).getRowObjectsJson()[0];
report("duckdb", Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Number(v)])));
