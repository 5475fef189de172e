#pragma once

#include <stddef.h>

#include "columns.h"

/*
 * The vocabulary of the clean output: the canonical columns, the header
 * aliases clients use for them (French and English), and the order status
 * vocabulary.  Lookups take keys folded by fold_key().
 */

/* The canonical columns (common/columns.h holds the list and the names);
 * the engine's own names for them, value for value. */
typedef enum vocab_column {
    VOCAB_ORDER_ID = COLUMN_ORDER_ID,
    VOCAB_ORDER_DATE = COLUMN_ORDER_DATE,
    VOCAB_CUSTOMER_ID = COLUMN_CUSTOMER_ID,
    VOCAB_CUSTOMER_EMAIL = COLUMN_CUSTOMER_EMAIL,
    VOCAB_PRODUCT_SKU = COLUMN_PRODUCT_SKU,
    VOCAB_PRODUCT_NAME = COLUMN_PRODUCT_NAME,
    VOCAB_QUANTITY = COLUMN_QUANTITY,
    VOCAB_UNIT_PRICE = COLUMN_UNIT_PRICE,
    VOCAB_CURRENCY = COLUMN_CURRENCY,
    VOCAB_STATUS = COLUMN_STATUS,
    VOCAB_ORDER_TIME = COLUMN_ORDER_TIME,
    VOCAB_COLUMNS = COLUMN_COUNT
} vocab_column;

/* The canonical column a folded header key names, or -1 when unknown. */
int vocab_column_of(const char *key);

/* The canonical name of a column ("order_date"). */
const char *vocab_column_name(vocab_column column);

/* 1 for the columns without which a file is unusable. */
int vocab_column_required(vocab_column column);

/* The canonical status a folded status key names ("livree" -> "delivered"),
 * or NULL when the value is not in the vocabulary. */
const char *vocab_status_of(const char *key);

/* For tests: the status alias table, which must stay sorted by key. */
size_t vocab_status_count(void);
const char *vocab_status_key(size_t index);
