/* The web page: GET / is server/ui/index.html, GET /ui/NAME the other
 * files of server/ui/, all compiled in (ui_assets.h).  Names are looked up
 * in that table and nothing else, so no request reaches the file system.
 *
 * Caching: the browser revalidates every load (no-cache) with the ETag, a
 * hash of the file, and gets 304 while the binary is unchanged.  The page
 * may talk to this origin only (CSP): it loads nothing from the network. */
#include <stdlib.h>
#include <string.h>

#include "routes.h"
#include "ui_assets.h"

static const struct ui_asset *find_asset(const char *name) {
    for (const struct ui_asset *a = dsr_ui_assets; a->name; a++)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

/* If-None-Match names this ETag (a list may hold several, or "*"). */
static bool etag_matches(const char *header, const char *etag) {
    if (!header) return false;
    if (strcmp(header, "*") == 0) return true;
    size_t n = strlen(etag);
    for (const char *p = header; (p = strstr(p, etag)); p += n) {
        char after = p[n];
        if (after == 0 || after == ',' || after == ' ') return true;
    }
    return false;
}

static void serve(const struct request *rq, const struct ui_asset *a, struct reply *out) {
    static const char CSP[] = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                              "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                              "frame-ancestors 'none'";
    const char *h[] = {"ETag", a->etag, "Cache-Control", "no-cache", "X-Content-Type-Options", "nosniff",
                       "Referrer-Policy", "no-referrer", "Content-Security-Policy", CSP, NULL};
    memcpy(out->headers, h, sizeof h);
    if (etag_matches(rq->if_none_match, a->etag)) {
        out->status = 304;
        out->text = strdup("");
        return;
    }
    out->status = 200;
    out->text = strdup(a->data);
    out->content_type = a->content_type;
}

void route_ui_index(struct server *s, const struct request *rq, struct reply *out) {
    (void)s;
    const struct ui_asset *a = find_asset("index.html");
    if (a) serve(rq, a, out);
    else reply_errorf(out, 404, NULL, "this dsrd was built without its web page");
}

void route_ui_asset(struct server *s, const struct request *rq, struct reply *out) {
    (void)s;
    const char *name = rq->path + strlen("/ui/");
    const struct ui_asset *a = find_asset(name);
    if (a) serve(rq, a, out);
    else reply_errorf(out, 404, NULL, "no file %s in the web page", rq->path);
}
