/* UTF-8 helpers for the tokenizer.
 *
 * Validation follows Rust's `str` rules (what HF tokenizers accepts): no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
#ifndef DSR_UTF8_H
#define DSR_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 when s[0..len) is valid UTF-8; otherwise 0 and *bad_at (if
 * non-NULL) receives the byte offset of the first invalid sequence. */
int utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Decodes the code point at s (len > 0 bytes available, input known valid);
 * *n receives its byte length. */
uint32_t utf8_decode(const char *s, size_t len, int *n);

/* Byte length of the valid sequence starting with lead byte c (1..4). */
int utf8_seq_len(unsigned char c);

/* Writes cp as UTF-8 into out (4 bytes available); returns the length. */
int utf8_encode(uint32_t cp, char *out);

/* Code point of the last character of the valid string s[0..len), len > 0. */
uint32_t utf8_last(const char *s, size_t len);

/* Copies src as valid UTF-8 into out (capacity >= 3 * len bytes suffices),
 * replacing each maximal invalid subpart with U+FFFD exactly like Rust's
 * String::from_utf8_lossy; returns the number of bytes written. */
size_t utf8_lossy(const unsigned char *src, size_t len, char *out);

#endif
