/* Printable ASCII copies of untrusted text, for log lines and for error
 * messages that jansson refuses (it requires valid UTF-8; a message can quote
 * raw request bytes or be cut inside a multi-byte character).
 *
 * Every byte outside 0x20..0x7e, and the backslash, becomes \xNN, so the copy
 * cannot split or colour a text log line and is always valid UTF-8.  out gets
 * at most out_size - 1 bytes plus the terminator; a long input is cut before
 * an escape that would not fit, never inside one.  out_size must be ≥ 1. */
#ifndef DSR_PROTO_PRINTABLE_H
#define DSR_PROTO_PRINTABLE_H

#include <stddef.h>

void printable_ascii(const char *in, char *out, size_t out_size);

#endif
