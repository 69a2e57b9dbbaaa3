#include "base64.h"

#include <stdlib.h>

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len, size_t *bad_at) {
    *out = NULL;
    *out_len = 0;
    if (len % 4) {
        *bad_at = len;
        return -1;
    }
    size_t pad = 0;
    if (len >= 1 && text[len - 1] == '=') pad++;
    if (len >= 2 && text[len - 2] == '=') pad++;
    size_t n = len / 4 * 3 - pad;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        *bad_at = 0;
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int last = i + 4 == len;
        for (int k = 0; k < 4; k++) {
            char c = text[i + k];
            /* '=' only in the final group's padded positions */
            if (c == '=' && last && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = sextet(c);
            if (v[k] < 0) {
                free(buf);
                *bad_at = i + (size_t)k;
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (last && pad && (w & (pad == 1 ? 0xffu : 0xffffu))) { /* non-zero unused bits: not canonical */
            free(buf);
            *bad_at = len - pad - 1;
            return -1;
        }
        buf[o++] = (uint8_t)(w >> 16);
        if (o < n) buf[o++] = (uint8_t)(w >> 8);
        if (o < n) buf[o++] = (uint8_t)w;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

char *base64_encode(const uint8_t *data, size_t len) {
    size_t n = (len + 2) / 3 * 4;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)data[i] << 16;
        if (i + 1 < len) w |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len) w |= data[i + 2];
        s[o++] = ALPHABET[w >> 18 & 63];
        s[o++] = ALPHABET[w >> 12 & 63];
        s[o++] = i + 1 < len ? ALPHABET[w >> 6 & 63] : '=';
        s[o++] = i + 2 < len ? ALPHABET[w & 63] : '=';
    }
    s[o] = 0;
    return s;
}
