#include "tokenizer/utf8.h"

int utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0; /* continuation byte or never-valid lead */
}

/* Allowed range of the second byte for a lead byte (Unicode Table 3-7). */
static void second_range(unsigned char lead, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (lead == 0xE0) *lo = 0xA0;
    else if (lead == 0xED) *hi = 0x9F; /* excludes surrogates */
    else if (lead == 0xF0) *lo = 0x90;
    else if (lead == 0xF4) *hi = 0x8F; /* caps at U+10FFFF */
}

/* Length of the valid sequence at s, or -(maximal invalid subpart length). */
static int scan_one(const unsigned char *s, size_t avail) {
    int n = utf8_seq_len(s[0]);
    if (n == 0) return -1;
    if (n == 1) return 1;
    unsigned char lo, hi;
    second_range(s[0], &lo, &hi);
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail) return -i;
        unsigned char c = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (c < l || c > h) return -i;
    }
    return n;
}

int utf8_valid(const char *s, size_t len, size_t *bad_at) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) { i++; continue; }
        int n = scan_one(u + i, len - i);
        if (n < 0) {
            if (bad_at) *bad_at = i;
            return 0;
        }
        i += (size_t)n;
    }
    return 1;
}

uint32_t utf8_decode(const char *s, size_t len, int *n) {
    const unsigned char *u = (const unsigned char *)s;
    int k = utf8_seq_len(u[0]);
    if (k == 0 || (size_t)k > len) k = 1; /* defensive: callers pass valid text */
    *n = k;
    if (k == 1) return u[0];
    uint32_t cp = u[0] & (0xFF >> (k + 1));
    for (int i = 1; i < k; i++) cp = (cp << 6) | (u[i] & 0x3F);
    return cp;
}

int utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

uint32_t utf8_last(const char *s, size_t len) {
    size_t i = len - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    int n;
    return utf8_decode(s + i, len - i, &n);
}

size_t utf8_lossy(const unsigned char *src, size_t len, char *out) {
    size_t i = 0, o = 0;
    while (i < len) {
        int n = scan_one(src + i, len - i);
        if (n > 0) {
            for (int k = 0; k < n; k++) out[o++] = (char)src[i + k];
            i += (size_t)n;
        } else {
            o += (size_t)utf8_encode(0xFFFD, out + o);
            i += (size_t)(-n);
        }
    }
    return o;
}
