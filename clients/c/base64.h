/* Standard base64 (RFC 4648, '+' '/', '=' padding), as PNG bodies travel in
 * the API's {"png": "..."} spans.
 *
 * Ownership: the returned buffers are malloc'ed and owned by the caller. */
#ifndef DSR_BASE64_H
#define DSR_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes n bytes; returns a NUL-terminated string, or NULL when out of memory. */
char *base64_encode(const uint8_t *data, size_t n);

/* Decodes len characters (whitespace is skipped; padding optional).  Returns
 * the bytes (size in *n_out), or NULL for invalid input or out of memory. */
uint8_t *base64_decode(const char *text, size_t len, size_t *n_out);

#endif
