/*
 * libFuzzer target for the protobuf event decoder (see fuzz_event.h): the
 * input is a message body published with Content-Type application/protobuf.
 */
#include "fuzz_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_event_one(data, size, "application/protobuf");
    return 0;
}
