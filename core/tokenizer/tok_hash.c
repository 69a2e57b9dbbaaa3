/* Open-addressing hash maps for the tokenizer: vocabulary strings -> ids and
 * merge pairs -> (rank, merged id). Linear probing, load factor <= 1/2. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int strmap_rehash(struct tok_strmap *m, size_t nslots, struct dsr_err *err) {
    int32_t *slots = malloc(nslots * sizeof *slots);
    if (!slots) return dsr_errf(err, "tokenizer: out of memory (hash table)");
    for (size_t i = 0; i < nslots; i++) slots[i] = -1;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = hash_bytes(m->arena + m->ents[e].off, m->ents[e].len) & (nslots - 1);
        while (slots[i] >= 0) i = (i + 1) & (nslots - 1);
        slots[i] = (int32_t)e;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t strmap_find(const struct tok_strmap *m, const char *key, size_t len) {
    size_t i = hash_bytes(key, len) & (m->nslots - 1);
    for (;;) {
        int32_t e = m->slots[i];
        if (e < 0) return i;
        const struct tok_strent *ent = &m->ents[e];
        if (ent->len == len && memcmp(m->arena + ent->off, key, len) == 0) return i;
        i = (i + 1) & (m->nslots - 1);
    }
}

int strmap_put(struct tok_strmap *m, const char *key, size_t len, int32_t val, struct dsr_err *err) {
    if (len > UINT32_MAX / 2) return dsr_errf(err, "tokenizer: token of %zu bytes is too long", len);
    if (m->nslots == 0 && strmap_rehash(m, 64, err)) return -1;
    size_t i = strmap_find(m, key, len);
    if (m->slots[i] >= 0) {
        m->ents[m->slots[i]].val = val;
        return 0;
    }
    if (m->n >= (size_t)INT32_MAX - 1) return dsr_errf(err, "tokenizer: too many strings");
    if (m->n == m->ents_cap) {
        size_t cap = m->ents_cap ? m->ents_cap * 2 : 64;
        struct tok_strent *ents = realloc(m->ents, cap * sizeof *ents);
        if (!ents) return dsr_errf(err, "tokenizer: out of memory (vocabulary)");
        m->ents = ents;
        m->ents_cap = cap;
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len + 1) cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a) return dsr_errf(err, "tokenizer: out of memory (vocabulary strings)");
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, key, len);
    m->arena[m->arena_len + len] = '\0';
    m->ents[m->n] = (struct tok_strent){.off = m->arena_len, .len = (uint32_t)len, .val = val};
    m->arena_len += len + 1;
    m->slots[i] = (int32_t)m->n;
    m->n++;
    if (m->n * 2 > m->nslots) return strmap_rehash(m, m->nslots * 2, err);
    return 0;
}

int strmap_get(const struct tok_strmap *m, const char *key, size_t len, int32_t *val) {
    if (m->nslots == 0) return 0;
    int32_t e = m->slots[strmap_find(m, key, len)];
    if (e < 0) return 0;
    *val = m->ents[e].val;
    return 1;
}

void strmap_free(struct tok_strmap *m) {
    free(m->arena);
    free(m->ents);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static size_t pair_slot(uint64_t key, size_t cap) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

int pairmap_init(struct tok_pairmap *m, size_t expected, struct dsr_err *err) {
    size_t cap = 64;
    while (cap < expected * 2 + 1) cap *= 2;
    m->keys = malloc(cap * sizeof *m->keys);
    m->rank = malloc(cap * sizeof *m->rank);
    m->merged = malloc(cap * sizeof *m->merged);
    if (!m->keys || !m->rank || !m->merged) {
        pairmap_free(m);
        return dsr_errf(err, "tokenizer: out of memory (%zu merges)", expected);
    }
    for (size_t i = 0; i < cap; i++) m->keys[i] = UINT64_MAX;
    m->cap = cap;
    m->n = 0;
    return 0;
}

/* Capacity was sized at init for every merge, so this never grows. */
void pairmap_put(struct tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = pair_slot(key, m->cap);
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == UINT64_MAX) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

int pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = pair_slot(key, m->cap);
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return 1;
        }
        if (k == UINT64_MAX) return 0;
        i = (i + 1) & (m->cap - 1);
    }
}

void pairmap_free(struct tok_pairmap *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}
