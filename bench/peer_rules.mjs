// The cleaning rules of bench/clean_pandas.py, as the regular expressions
// and word lists the DuckDB and Polars peers share (clean_duckdb.mjs,
// clean_polars.mjs).  Both engines use RE2-style regular expressions
// (no back-references), so "the same separator twice" is spelled out as
// one alternative per separator.

// Whitespace runs the engine folds into one space (clean.c, clean_pandas WS).
export const WS = "[ \\t\\n\\x{0B}\\f\\r\\x{A0}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}]+";

const time = (p) => `(?:${p}(\\d{1,2}):(\\d{2})(?::(\\d{2})(?:\\.\\d{1,9})?)?)?`;
const zone = "(?:[Zz]|[+-]\\d{2}(?::?\\d{2})?)?";
// order_date: Y-M-D with an optional [ T] time and zone, or D-M-Y with an
// optional " time"; the separator is one of - / . and the same twice.
// Groups: 1 year, 2 month, 3 day, 4 hour, 5 minute, 6 second (ISO), and
// 1 day, 2 month, 3 year, 4-6 time (D-M-Y).
export const DATE_YMD = ["-", "/", "\\."].map(
    (s) => `(\\d{4})${s}(\\d{1,2})${s}(\\d{1,2})${time("[ Tt]")}${zone}`);
export const DATE_DMY = ["-", "/", "\\."].map(
    (s) => `(\\d{1,2})${s}(\\d{1,2})${s}(\\d{4})${time(" ")}`);
export const YMD = `^(?:${DATE_YMD.join("|")})$`;
export const DMY = `^(?:${DATE_DMY.join("|")})$`;

// unit_price once the euro sign or "EUR" before or after it and the spaces
// next to them are gone: group 1 the integer part (with its thousands
// separators), group 2 the decimals.  In the order of clean_pandas MONEY.
export const MONEY = [
    "^(\\d+)(?:[.,](\\d{1,2}))?$",
    "^(\\d{1,3}(?: \\d{3})+)(?:[.,](\\d{1,2}))?$",
    "^(\\d{1,3}(?:'\\d{3})+)(?:[.,](\\d{1,2}))?$",
    "^(\\d{1,3}(?:\\.\\d{3})+),(\\d{1,2})$",
    "^(\\d{1,3}(?:,\\d{3})+)\\.(\\d{1,2})$",
    "^(\\d{1,3}(?:\\.\\d{3}){2,})()$",
    "^(\\d{1,3}(?:,\\d{3}){2,})()$",
];
export const EURO_PREFIX = "^(?:€|[Ee][Uu][Rr]) *";
export const EURO_SUFFIX = " *(?:€|[Ee][Uu][Rr])$";

// The generated files' header, folded, onto the canonical names (vocab.c).
export const COLUMNS = ["order_id", "order_date", "customer_id", "customer_email", "product_sku",
    "product_name", "quantity", "unit_price", "currency", "status", "comment"];

import {closeSync, openSync, readSync, writeSync} from "node:fs";

// Node's "windows-1252" TextDecoder is Latin-1 (0x80 stays U+0080), so the
// 32 bytes where the two differ are mapped here; the five Windows-1252 leaves
// undefined stay C1 controls, as in the engine.
const CP1252_HIGH = "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

const CHUNK = 64 << 20;

function cp1252(bytes) {
    return bytes.toString("latin1").replace(/[\x80-\x9f]/g,
        (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]);
}

// Writes the drop at input as UTF-8 text to output, 64 MiB at a time (a
// JavaScript string holds at most 512M characters), passing each piece
// through edit; a CR ending a piece waits for the next one, so that edit
// always sees a CRLF whole.
function transcode(input, output, edit, utf8) {
    const fd = openSync(input, "r");
    const out = openSync(output, "w");
    const buf = Buffer.alloc(CHUNK);
    const decoder = new TextDecoder("utf-8", {fatal: true});
    let carry = "";
    try {
        for (;;) {
            const n = readSync(fd, buf, 0, CHUNK, null);
            let text = carry + (utf8 ? decoder.decode(buf.subarray(0, n), {stream: n > 0})
                                     : cp1252(buf.subarray(0, n)));
            carry = "";
            if (n > 0 && text.endsWith("\r")) {
                carry = "\r";
                text = text.slice(0, -1);
            }
            writeSync(out, edit(text));
            if (n === 0)
                break;
        }
    } finally {
        closeSync(fd);
        closeSync(out);
    }
}

// The drop as a UTF-8 file: as it is when it is valid UTF-8, otherwise
// decoded as Windows-1252 (the engine decides row by row; the generated files
// are one or the other throughout).
export function transcodeDrop(input, output, edit = (text) => text) {
    try {
        transcode(input, output, edit, true);
    } catch (e) {
        if (!(e instanceof TypeError))
            throw e;
        transcode(input, output, edit, false);
    }
}

export function report(name, counts) {
    process.stdout.write(JSON.stringify({tool: name, ...counts}) + "\n");
}
