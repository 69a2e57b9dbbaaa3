#include "reward_cmd.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *reward_request_line(const char *task, const char *image, const char *caption) {
    json_t *req = json_pack("{s:s, s:s, s:s}", "task", task, "image", image, "caption", caption);
    char *text = req ? json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(req);
    if (!text) return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

int reward_reply_parse(const char *line, double *reward, char *why, size_t why_size) {
    json_error_t je;
    json_t *r = json_loads(line, JSON_DECODE_ANY, &je);
    int rc = -1;
    const json_t *v = json_object_get(r, "reward"), *pass = json_object_get(r, "pass"),
                 *error = json_object_get(r, "error");
    if (!r || !json_is_object(r)) {
        snprintf(why, why_size, "reply is not a JSON object: '%.200s'", line);
    } else if (error && !json_is_null(error)) {
        const char *msg = json_string_value(error);
        char *dump = msg ? NULL : json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(why, why_size, "the grader reports an error: %.300s", msg ? msg : dump ? dump : "?");
        free(dump);
    } else if (v) {
        if (json_is_number(v) && isfinite(json_number_value(v))) {
            *reward = json_number_value(v);
            rc = 0;
        } else {
            snprintf(why, why_size, "\"reward\" is not a finite number: '%.200s'", line);
        }
    } else if (json_is_boolean(pass)) {
        *reward = json_is_true(pass) ? 1.0 : 0.0;
        rc = 0;
    } else {
        snprintf(why, why_size, "reply has neither \"reward\": number nor \"pass\": bool: '%.200s'", line);
    }
    json_decref(r);
    return rc;
}

int reward_cmd_start(struct reward_cmd *g, const char *cmd, double timeout_s, struct dsr_err *err) {
    memset(g, 0, sizeof *g);
    g->cmd = cmd;
    g->timeout_s = timeout_s;
    if (subproc_start(&g->proc, cmd, 1, NULL, err) != 0) return dsr_err_prefix(err, "--reward-cmd");
    return 0;
}

/* Adds the exit status when the grader is gone (the likely cause). */
static int grader_fail(struct reward_cmd *g, struct dsr_err *err) {
    char msg[DSR_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    int status = subproc_finish(&g->proc, 0.5);
    if (status >= 0) return dsr_errf(err, "%s (the grader exited with status %d)", msg, status);
    return dsr_errf(err, "%s", msg);
}

int reward_cmd_ask(struct reward_cmd *g, const char *task, const char *image, const char *caption, double *reward,
                   struct dsr_err *err) {
    if (g->proc.pid <= 0) return dsr_errf(err, "the grader is not running");
    char *req = reward_request_line(task, image, caption);
    if (!req) return dsr_errf(err, "cannot encode the request (caption or path not UTF-8?)");
    int rc = subproc_write(&g->proc, req, strlen(req), err);
    free(req);
    if (rc != 0) return grader_fail(g, err);
    char *line;
    int got = subproc_read_line(&g->proc, g->timeout_s, &line, err);
    if (got == 0) dsr_errf(err, "the grader closed its output without answering");
    if (got != 1) return grader_fail(g, err);
    char why[400];
    if (reward_reply_parse(line, reward, why, sizeof why) != 0) return dsr_errf(err, "%s", why);
    g->asked++;
    return 0;
}

void reward_cmd_stop(struct reward_cmd *g) { subproc_finish(&g->proc, 5.0); }
