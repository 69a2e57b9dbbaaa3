/* Replays every fuzz target's seed corpus (fuzz/corpus/<name>/) and every
 * input a fuzzing run once crashed on (fuzz/regressions/<name>/) through the
 * target, built with the ordinary compiler: in make test-asan, a fixed crash
 * that comes back fails here.  Each target must have seeds. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_targets.h"
#include "harness.h"

/* Runs fn on every file of dir; the count, or -1 when dir is missing. */
static int replay(const char *dir, int (*fn)(const uint8_t *, size_t)) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *data = th_read_file(path, &len);
        if (!data) continue;
        fn((const uint8_t *)data, len);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

static void test_corpora(struct th *t) {
    struct {
        const char *name;
        int (*fn)(const uint8_t *, size_t);
    } targets[] = {
#define FUZZ_ROW(name) {#name, fuzz_##name},
        FUZZ_TARGETS(FUZZ_ROW)
#undef FUZZ_ROW
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", targets[i].name);
        int seeds = replay(dir, targets[i].fn);
        snprintf(dir, sizeof dir, "fuzz/regressions/%s", targets[i].name);
        int regressions = replay(dir, targets[i].fn);
        TH_CHECK(t, seeds > 0, "fuzz target %s has no seeds in fuzz/corpus/%s", targets[i].name, targets[i].name);
        printf("  %-17s %3d seeds, %d regression inputs\n", targets[i].name, seeds, regressions > 0 ? regressions : 0);
    }
}

int main(void) {
    struct th t = {0};
    th_run(&t, "corpora", test_corpora);
    return th_finish(&t, "test_fuzz_corpus");
}
