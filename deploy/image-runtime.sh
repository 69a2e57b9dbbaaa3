#!/bin/sh
# Runtime stage of the container image (Dockerfile) and of its CI stand-in
# (deploy/test-image.sh): only the shared libraries dsrd, dsr and dsr-train
# link against, curl for the HEALTHCHECK, an unprivileged user and the
# model / checkpoint directories.  Package names are Debian bookworm's.
set -eu
export DEBIAN_FRONTEND=noninteractive

RUNTIME_PACKAGES="libopenblas0-openmp libjansson4 libmicrohttpd12 libpng16-16 libjpeg62-turbo \
libuuid1 libpcre2-8-0 libicu72 libcurl4 libgomp1 curl ca-certificates"

apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y --no-install-recommends $RUNTIME_PACKAGES
apt-get clean
rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so volume ownership is predictable across hosts.
groupadd --system --gid 10001 dsr
useradd --system --uid 10001 --gid dsr --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin dsr
mkdir -p /models /checkpoints /images
chown dsr:dsr /checkpoints
