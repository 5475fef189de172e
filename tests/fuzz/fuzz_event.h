#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Shared body of fuzz_event_protobuf and fuzz_event_json: event_decode() of
 * data as each of the three event types with the given Content-Type (NULL:
 * sniffed), and, whenever a decode succeeds, the round trip through both
 * encoders: event_encode() as protobuf and as JSON, event_decode() of each,
 * and the decoded struct must equal the first one byte for byte.  A failed
 * decode must leave a one-line reason.  Aborts on any broken invariant.
 */
void fuzz_event_one(const uint8_t *data, size_t size, const char *content_type);
