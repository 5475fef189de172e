#include "vocab.h"

#include <stdlib.h>
#include <string.h>

typedef struct alias {
    const char *key;
    vocab_column column;
} alias;

/*
 * Header spellings seen in client exports, already folded (lowercase, no
 * accents, '_' between words).  Names that could mean several columns ("id",
 * "date" of delivery vs order...) are kept only where the meaning is the
 * usual one in order exports; a file naming two columns the same way is
 * refused as ambiguous rather than guessed.
 */
static const alias column_aliases[] = {
    {"order_id", VOCAB_ORDER_ID},
    {"orderid", VOCAB_ORDER_ID},
    {"order_no", VOCAB_ORDER_ID},
    {"order_number", VOCAB_ORDER_ID},
    {"order_num", VOCAB_ORDER_ID},
    {"order_ref", VOCAB_ORDER_ID},
    {"order_reference", VOCAB_ORDER_ID},
    {"id_commande", VOCAB_ORDER_ID},
    {"commande_id", VOCAB_ORDER_ID},
    {"commande", VOCAB_ORDER_ID},
    {"numero_commande", VOCAB_ORDER_ID},
    {"numero_de_commande", VOCAB_ORDER_ID},
    {"num_commande", VOCAB_ORDER_ID},
    {"no_commande", VOCAB_ORDER_ID},
    {"n_commande", VOCAB_ORDER_ID},
    {"ref_commande", VOCAB_ORDER_ID},
    {"reference_commande", VOCAB_ORDER_ID},

    {"order_date", VOCAB_ORDER_DATE},
    {"orderdate", VOCAB_ORDER_DATE},
    {"order_datetime", VOCAB_ORDER_DATE},
    {"date", VOCAB_ORDER_DATE},
    {"date_commande", VOCAB_ORDER_DATE},
    {"date_de_commande", VOCAB_ORDER_DATE},
    {"date_de_la_commande", VOCAB_ORDER_DATE},
    {"date_achat", VOCAB_ORDER_DATE},
    {"purchase_date", VOCAB_ORDER_DATE},

    {"customer_id", VOCAB_CUSTOMER_ID},
    {"customerid", VOCAB_CUSTOMER_ID},
    {"customer_no", VOCAB_CUSTOMER_ID},
    {"customer_number", VOCAB_CUSTOMER_ID},
    {"customer", VOCAB_CUSTOMER_ID},
    {"client_id", VOCAB_CUSTOMER_ID},
    {"id_client", VOCAB_CUSTOMER_ID},
    {"client", VOCAB_CUSTOMER_ID},
    {"code_client", VOCAB_CUSTOMER_ID},
    {"numero_client", VOCAB_CUSTOMER_ID},
    {"num_client", VOCAB_CUSTOMER_ID},
    {"no_client", VOCAB_CUSTOMER_ID},
    {"n_client", VOCAB_CUSTOMER_ID},

    {"customer_email", VOCAB_CUSTOMER_EMAIL},
    {"email", VOCAB_CUSTOMER_EMAIL},
    {"e_mail", VOCAB_CUSTOMER_EMAIL},
    {"mail", VOCAB_CUSTOMER_EMAIL},
    {"email_address", VOCAB_CUSTOMER_EMAIL},
    {"customer_mail", VOCAB_CUSTOMER_EMAIL},
    {"courriel", VOCAB_CUSTOMER_EMAIL},
    {"email_client", VOCAB_CUSTOMER_EMAIL},
    {"mail_client", VOCAB_CUSTOMER_EMAIL},
    {"adresse_email", VOCAB_CUSTOMER_EMAIL},
    {"adresse_e_mail", VOCAB_CUSTOMER_EMAIL},
    {"adresse_mail", VOCAB_CUSTOMER_EMAIL},

    {"product_sku", VOCAB_PRODUCT_SKU},
    {"sku", VOCAB_PRODUCT_SKU},
    {"product_code", VOCAB_PRODUCT_SKU},
    {"product_ref", VOCAB_PRODUCT_SKU},
    {"item_sku", VOCAB_PRODUCT_SKU},
    {"code_produit", VOCAB_PRODUCT_SKU},
    {"ref_produit", VOCAB_PRODUCT_SKU},
    {"reference_produit", VOCAB_PRODUCT_SKU},
    {"code_article", VOCAB_PRODUCT_SKU},
    {"ref_article", VOCAB_PRODUCT_SKU},
    {"reference_article", VOCAB_PRODUCT_SKU},

    {"product_name", VOCAB_PRODUCT_NAME},
    {"product", VOCAB_PRODUCT_NAME},
    {"item_name", VOCAB_PRODUCT_NAME},
    {"item", VOCAB_PRODUCT_NAME},
    {"produit", VOCAB_PRODUCT_NAME},
    {"nom_produit", VOCAB_PRODUCT_NAME},
    {"nom_du_produit", VOCAB_PRODUCT_NAME},
    {"libelle", VOCAB_PRODUCT_NAME},
    {"libelle_produit", VOCAB_PRODUCT_NAME},
    {"libelle_article", VOCAB_PRODUCT_NAME},
    {"designation", VOCAB_PRODUCT_NAME},
    {"article", VOCAB_PRODUCT_NAME},

    {"quantity", VOCAB_QUANTITY},
    {"qty", VOCAB_QUANTITY},
    {"quantite", VOCAB_QUANTITY},
    {"qte", VOCAB_QUANTITY},
    {"quantity_ordered", VOCAB_QUANTITY},
    {"quantite_commandee", VOCAB_QUANTITY},
    {"nb_articles", VOCAB_QUANTITY},

    {"unit_price", VOCAB_UNIT_PRICE},
    {"unitprice", VOCAB_UNIT_PRICE},
    {"price", VOCAB_UNIT_PRICE},
    {"unit_cost", VOCAB_UNIT_PRICE},
    {"price_per_unit", VOCAB_UNIT_PRICE},
    {"prix", VOCAB_UNIT_PRICE},
    {"prix_unitaire", VOCAB_UNIT_PRICE},
    {"prix_unit", VOCAB_UNIT_PRICE},
    {"prix_u", VOCAB_UNIT_PRICE},
    {"pu", VOCAB_UNIT_PRICE},

    {"currency", VOCAB_CURRENCY},
    {"currency_code", VOCAB_CURRENCY},
    {"devise", VOCAB_CURRENCY},
    {"monnaie", VOCAB_CURRENCY},

    {"status", VOCAB_STATUS},
    {"order_status", VOCAB_STATUS},
    {"state", VOCAB_STATUS},
    {"statut", VOCAB_STATUS},
    {"statut_commande", VOCAB_STATUS},
    {"etat", VOCAB_STATUS},
    {"etat_commande", VOCAB_STATUS},

    {"order_time", VOCAB_ORDER_TIME},
    {"time", VOCAB_ORDER_TIME},
    {"heure", VOCAB_ORDER_TIME},
    {"heure_commande", VOCAB_ORDER_TIME},
    {"heure_de_commande", VOCAB_ORDER_TIME},
};

typedef struct status_alias {
    const char *key;
    const char *status;
} status_alias;

/*
 * The status vocabulary: pending, paid, shipped, delivered, cancelled,
 * returned, refunded.  Keys are folded values, French in the usual genders
 * and numbers, English in both spellings; sorted by key for bsearch (a unit
 * test checks the order), since this runs once per row.
 */
static const status_alias statuses[] = {
    {"annule", "cancelled"},
    {"annulee", "cancelled"},
    {"annulees", "cancelled"},
    {"annules", "cancelled"},
    {"canceled", "cancelled"},
    {"cancelled", "cancelled"},
    {"completed", "delivered"},
    {"delivered", "delivered"},
    {"en_attente", "pending"},
    {"en_cours", "pending"},
    {"en_cours_de_livraison", "shipped"},
    {"en_preparation", "pending"},
    {"envoye", "shipped"},
    {"envoyee", "shipped"},
    {"expedie", "shipped"},
    {"expediee", "shipped"},
    {"expediees", "shipped"},
    {"expedies", "shipped"},
    {"in_progress", "pending"},
    {"livre", "delivered"},
    {"livree", "delivered"},
    {"livrees", "delivered"},
    {"livres", "delivered"},
    {"paid", "paid"},
    {"paye", "paid"},
    {"payee", "paid"},
    {"pending", "pending"},
    {"processing", "pending"},
    {"refunded", "refunded"},
    {"regle", "paid"},
    {"reglee", "paid"},
    {"rembourse", "refunded"},
    {"remboursee", "refunded"},
    {"retour", "returned"},
    {"retourne", "returned"},
    {"retournee", "returned"},
    {"returned", "returned"},
    {"shipped", "shipped"},
};

int vocab_column_of(const char *key)
{
    for (size_t i = 0; i < sizeof(column_aliases) / sizeof(column_aliases[0]); i++) {
        if (strcmp(column_aliases[i].key, key) == 0)
            return (int)column_aliases[i].column;
    }
    return -1;
}

const char *vocab_column_name(vocab_column column)
{
    return column_name((column_id)column);
}

int vocab_column_required(vocab_column column)
{
    return column_required((column_id)column);
}

static int compare_status(const void *key, const void *entry)
{
    return strcmp(key, ((const status_alias *)entry)->key);
}

const char *vocab_status_of(const char *key)
{
    const status_alias *found = bsearch(key, statuses, sizeof(statuses) / sizeof(statuses[0]),
                                        sizeof(statuses[0]), compare_status);

    return found ? found->status : NULL;
}

size_t vocab_status_count(void)
{
    return sizeof(statuses) / sizeof(statuses[0]);
}

const char *vocab_status_key(size_t index)
{
    return index < vocab_status_count() ? statuses[index].key : NULL;
}
