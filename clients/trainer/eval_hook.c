#include "eval_hook.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subproc.h"

#define EVAL_MAX_LINE (16u << 20)

static int blank(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    return *s == '\0';
}

int eval_hook_run(const char *cmd, const char *server, const char *api_key, long step, long policy_version,
                  json_t **result, struct dsr_err *err) {
    *result = NULL;
    size_t key_n = api_key ? strlen(api_key) + 16 : 1, server_n = strlen(server) + 16;
    char step_s[48], version_s[48], *server_s = malloc(server_n), *key_s = malloc(key_n);
    if (!server_s || !key_s) {
        free(server_s);
        free(key_s);
        return dsr_errf(err, "out of memory");
    }
    snprintf(step_s, sizeof step_s, "DSR_STEP=%ld", step);
    snprintf(version_s, sizeof version_s, "DSR_POLICY_VERSION=%ld", policy_version);
    snprintf(server_s, server_n, "DSR_SERVER=%s", server);
    if (api_key) snprintf(key_s, key_n, "DSR_API_KEY=%s", api_key);
    const char *env[] = {server_s, step_s, version_s, api_key ? key_s : NULL, NULL};
    struct subproc p;
    int rc = subproc_start(&p, cmd, 0, env, err);
    free(server_s);
    free(key_s);
    if (rc != 0) return -1;
    p.max_line = EVAL_MAX_LINE;

    char *last = NULL, *line;
    int got;
    while ((got = subproc_read_line(&p, 0, &line, err)) == 1) {
        if (blank(line)) continue;
        free(last);
        if (!(last = strdup(line))) {
            got = dsr_errf(err, "out of memory");
            break;
        }
    }
    int status = subproc_finish(&p, got < 0 ? 0 : 60.0);
    if (got < 0) {
        free(last);
        return dsr_err_prefix(err, "reading its output");
    }
    if (status != 0) {
        free(last);
        return status > 0 ? dsr_errf(err, "exited with status %d", status) : dsr_errf(err, "killed by a signal");
    }
    json_error_t je;
    json_t *obj = last ? json_loads(last, 0, &je) : NULL;
    if (!json_is_object(obj)) {
        json_decref(obj);
        rc = last ? dsr_errf(err, "the last line of its output is not a JSON object: '%.200s'", last)
                  : dsr_errf(err, "no output (the last non-empty line must be a JSON object)");
        free(last);
        return rc;
    }
    free(last);
    *result = obj;
    return 0;
}

int eval_due(long step, long every, long steps) {
    return step == 0 || step == steps || (every > 0 && step % every == 0);
}

int eval_done_add(struct eval_done *d, long step) {
    if (eval_done_has(d, step)) return 0;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        long *s = realloc(d->steps, nc * sizeof *s);
        if (!s) return -1;
        d->steps = s;
        d->cap = nc;
    }
    d->steps[d->n++] = step;
    return 0;
}

int eval_done_has(const struct eval_done *d, long step) {
    for (size_t i = 0; i < d->n; i++)
        if (d->steps[i] == step) return 1;
    return 0;
}

int eval_done_load(struct eval_done *d, const char *log_path, struct dsr_err *err) {
    memset(d, 0, sizeof *d);
    FILE *f = fopen(log_path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        if (!strstr(line, "\"eval\"")) continue; /* most lines are step records: skip parsing them */
        json_t *rec = json_loads(line, 0, NULL);
        const json_t *step = json_object_get(rec, "step");
        if (json_is_object(json_object_get(rec, "eval")) && json_is_integer(step) &&
            eval_done_add(d, (long)json_integer_value(step)) != 0)
            rc = dsr_errf(err, "out of memory");
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return rc;
}

void eval_done_free(struct eval_done *d) {
    free(d->steps);
    memset(d, 0, sizeof *d);
}
