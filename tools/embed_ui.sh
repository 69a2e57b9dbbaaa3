#!/bin/sh
# Writes the C table of the web page's files (declared in server/ui_assets.h)
# to stdout:
#   tools/embed_ui.sh server/ui/index.html server/ui/app.js ... > ui_assets.c
# Text files only (HTML, CSS, JS, SVG); each one's ETag is a hash of its bytes.
set -eu
echo '#include "ui_assets.h"'
i=0
for f in "$@"; do
    if ! tr -d '\000' <"$f" | cmp -s - "$f"; then echo "embed_ui.sh: $f holds NUL bytes" >&2; exit 1; fi
    echo "static const unsigned char f$i[] = {"
    od -An -v -tx1 "$f" | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'
    echo '0x00};'
    i=$((i + 1))
done
echo 'const struct ui_asset dsr_ui_assets[] = {'
i=0
for f in "$@"; do
    case "$f" in
    *.html) type='text/html; charset=utf-8' ;;
    *.css) type='text/css; charset=utf-8' ;;
    *.js) type='text/javascript; charset=utf-8' ;;
    *.svg) type='image/svg+xml' ;;
    *) echo "embed_ui.sh: $f: not a known text type" >&2; exit 1 ;;
    esac
    hash=$(sha256sum "$f" | cut -c1-20)
    echo "    {\"$(basename "$f")\", \"$type\", (const char *)f$i, sizeof f$i - 1, \"\\\"$hash\\\"\"},"
    i=$((i + 1))
done
echo '    {0, 0, 0, 0, 0},'
echo '};'
