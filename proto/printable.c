#include "printable.h"

void printable_ascii(const char *in, char *out, size_t out_size) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)in; *c; c++) {
        int plain = *c >= 0x20 && *c < 0x7f && *c != '\\';
        size_t need = plain ? 1 : 4;
        if (o + need >= out_size) break;
        if (plain) {
            out[o++] = (char)*c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        }
    }
    out[o] = '\0';
}
