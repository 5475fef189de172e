/*
 * libFuzzer target for the JSON event decoder (see fuzz_event.h): the input
 * is a message body published with Content-Type application/json, and also
 * without a Content-Type (the decoder then sniffs the first non-blank byte).
 */
#include "fuzz_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_event_one(data, size, "application/json");
    fuzz_event_one(data, size, NULL);
    return 0;
}
