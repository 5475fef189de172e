#pragma once

/*
 * The canonical columns of the clean output, in output order, then the
 * optional time column: the one list both the cleaning engine (its header
 * vocabulary) and client profiles (the targets of their header aliases) use.
 */
typedef enum column_id {
    COLUMN_ORDER_ID,
    COLUMN_ORDER_DATE,
    COLUMN_CUSTOMER_ID,
    COLUMN_CUSTOMER_EMAIL,
    COLUMN_PRODUCT_SKU,
    COLUMN_PRODUCT_NAME,
    COLUMN_QUANTITY,
    COLUMN_UNIT_PRICE,
    COLUMN_CURRENCY,
    COLUMN_STATUS,
    /* Not a canonical input column: a separate time column ("heure") some
     * exports have, merged into order_time when the date has no time. */
    COLUMN_ORDER_TIME,
    COLUMN_COUNT
} column_id;

/* The canonical name of a column ("order_date"), or "?" out of range. */
const char *column_name(column_id column);

/* The column whose canonical name is exactly name, or -1. */
int column_of_name(const char *name);

/* 1 for the columns without which a file is unusable. */
int column_required(column_id column);
