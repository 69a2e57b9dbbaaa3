/* Strict standard base64 (RFC 4648 §4, "+/" alphabet, "=" padding).
 *
 * Decoding accepts only canonical input: length a multiple of 4, padding
 * only at the end, no whitespace, and zero unused bits in the last group, so
 * every byte string has exactly one accepted encoding.  Buffers returned
 * through **out are malloc'ed and owned by the caller. */
#ifndef DSR_BASE64_H
#define DSR_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decodes text[0..len).  Returns 0 and sets *out and *out_len, or -1 with
 * *bad_at the offending character offset (len for a bad length). */
int base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len, size_t *bad_at);

/* Encodes data[0..len) into a NUL-terminated string (NULL when out of memory). */
char *base64_encode(const uint8_t *data, size_t len);

#endif
