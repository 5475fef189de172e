#pragma once

#include <stddef.h>

/*
 * Drop names that cannot be used as they are.  A drop's name travels into
 * event fields (protobuf strings must be UTF-8, and the event decoders refuse
 * control characters), log lines, storage paths (which refuse control
 * characters and backslashes) and the depot's file names, which must stay
 * within the 255 bytes of common file systems once ".N" (a second drop of the
 * same name), ".rejects.csv" and the storage's hidden temporary prefix and
 * suffix are added.  Such a drop is failed once, under an escaped name in its
 * FileFailed event and a safe name in failed/<date>/.  Pure functions on
 * caller-owned buffers; nothing here allocates.
 */

/* Longest drop name used as it is, in bytes. */
#define DROPNAME_MAX 200

/*
 * NULL when name can be used as it is; otherwise why not, as a phrase that
 * follows "the file name ": "contains a control character", "contains a
 * backslash", "is not valid UTF-8" or "is longer than 200 bytes".
 */
const char *dropname_problem(const char *name);

/*
 * Writes name into out (out_len >= 4 bytes) as printable, valid UTF-8: each
 * control character (C0, DEL, C1) and each byte of invalid UTF-8 becomes
 * \xHH, a backslash becomes \\; a name that does not fit is cut at a
 * character boundary and ends in "...".
 */
void dropname_escape(const char *name, char *out, size_t out_len);

/*
 * Writes a name that can be used as it is into out (out_len >= 8 bytes):
 * name's stem with each control character, backslash and byte of invalid
 * UTF-8 replaced by '_', cut at a character boundary to fit DROPNAME_MAX
 * with its ".csv".
 */
void dropname_safe(const char *name, char *out, size_t out_len);
