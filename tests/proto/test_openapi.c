/* proto/openapi.yaml is valid OpenAPI 3 (checked by swagger-cli from npm,
 * tests/openapi_lint.sh) and documents exactly the routes dsrd serves
 * (`dsrd --routes` against the yaml's paths and methods). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_ROUTES 64

struct route_set {
    char items[MAX_ROUTES][300]; /* "POST /score" */
    int n;
};

static int contains(const struct route_set *s, const char *r) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i], r) == 0) return 1;
    return 0;
}

static void add(struct route_set *s, const char *method, const char *path) {
    if (s->n < MAX_ROUTES) snprintf(s->items[s->n++], sizeof s->items[0], "%s %s", method, path);
}

/* The yaml's "paths:" block: "  /path:" at indent 2, "    get:" at indent 4. */
static int yaml_routes(const char *file, struct route_set *s) {
    FILE *f = fopen(file, "r");
    if (!f) return -1;
    char line[512], path[256] = "";
    int in_paths = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strcmp(line, "paths:")) {
            in_paths = 1;
            continue;
        }
        if (in_paths && line[0] && line[0] != ' ') break; /* next top-level key */
        if (!in_paths) continue;
        if (!strncmp(line, "  /", 3) && line[strlen(line) - 1] == ':') {
            snprintf(path, sizeof path, "%.*s", (int)strlen(line) - 3, line + 2);
        } else if (!strncmp(line, "    ", 4) && line[4] != ' ' && path[0]) {
            char m[16] = "";
            size_t k = 0;
            for (const char *p = line + 4; *p && *p != ':' && k < sizeof m - 1; p++) m[k++] = (char)toupper(*p);
            m[k] = 0;
            if (!strcmp(m, "GET") || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "DELETE")) add(s, m, path);
        }
    }
    fclose(f);
    return 0;
}

/* th first, so a test function's struct th * is also its context. */
struct openapi_test {
    struct th t;
    char dsrd[4096]; /* BUILD/dsrd */
};

static void test_routes_match_yaml(struct th *t) {
    const struct openapi_test *o = (const struct openapi_test *)t;
    struct route_set yaml = {0}, served = {0};
    TH_CHECK(t, yaml_routes("proto/openapi.yaml", &yaml) == 0 && yaml.n > 0, "cannot read proto/openapi.yaml");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s --routes", o->dsrd);
    FILE *p = popen(cmd, "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = 0;
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = 0;
        add(&served, line, sp + 1);
    }
    int rc = p ? pclose(p) : -1;
    TH_CHECK(t, rc == 0 && served.n > 0, "'%s' failed", cmd);
    for (int i = 0; i < served.n; i++)
        TH_CHECK(t, contains(&yaml, served.items[i]), "served route '%s' is missing from openapi.yaml", served.items[i]);
    for (int i = 0; i < yaml.n; i++)
        TH_CHECK(t, contains(&served, yaml.items[i]), "openapi.yaml documents '%s', which dsrd does not serve",
                 yaml.items[i]);
}

static void test_yaml_is_valid_openapi(struct th *t) {
    int rc = system("tests/openapi_lint.sh");
    TH_CHECK(t, rc == 0, "tests/openapi_lint.sh failed (status %d)", rc);
}

int main(int argc, char **argv) {
    (void)argc;
    struct openapi_test o = {0};
    (void)argv;
    if (th_build_program("dsrd", o.dsrd, sizeof o.dsrd)) return 1;
    th_run(&o.t, "routes_match_yaml", test_routes_match_yaml);
    th_run(&o.t, "yaml_is_valid_openapi", test_yaml_is_valid_openapi);
    return th_finish(&o.t, "test_openapi");
}
