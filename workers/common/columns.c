#include "columns.h"

#include <string.h>

static const char *const names[] = {
    "order_id", "order_date", "customer_id", "customer_email", "product_sku", "product_name",
    "quantity", "unit_price", "currency",    "status",         "order_time",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == COLUMN_COUNT, "one name per column");

const char *column_name(column_id column)
{
    return (unsigned)column < COLUMN_COUNT ? names[column] : "?";
}

int column_of_name(const char *name)
{
    for (int c = 0; c < COLUMN_COUNT; c++) {
        if (strcmp(names[c], name) == 0)
            return c;
    }
    return -1;
}

int column_required(column_id column)
{
    return column == COLUMN_ORDER_ID || column == COLUMN_ORDER_DATE || column == COLUMN_QUANTITY ||
           column == COLUMN_UNIT_PRICE;
}
