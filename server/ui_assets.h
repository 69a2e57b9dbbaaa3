/* The web page's files (server/ui/), compiled into dsrd by the build
 * (tools/embed_ui.sh writes the table), so the page needs no files and no
 * network at run time. */
#ifndef DSRD_UI_ASSETS_H
#define DSRD_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;         /* file name under server/ui/, e.g. "app.js" */
    const char *content_type;
    const char *data;         /* NUL-terminated text */
    size_t len;
    const char *etag;         /* quoted content hash */
};

/* Every file, ended by an entry whose name is NULL. */
extern const struct ui_asset dsr_ui_assets[];

#endif
