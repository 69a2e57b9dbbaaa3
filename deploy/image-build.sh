#!/bin/sh
# Build stage of the container image (Dockerfile) and of its CI stand-in
# (deploy/test-image.sh): on a bare Debian bookworm, from the repository root,
# install the build dependencies and build exactly as README says
# (`make deps && make`), then stage the programs for the runtime stage.
#
#   deploy/image-build.sh OUTDIR
#
# OUTDIR receives dsrd and, when this tree builds them, dsr and dsr-train.
set -eu
out=${1:?usage: image-build.sh OUTDIR}
export DEBIAN_FRONTEND=noninteractive

# `make deps` needs make itself; bookworm-slim does not ship it.
if ! command -v make >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y --no-install-recommends make
fi
make deps
make -j"$(nproc)"

mkdir -p "$out"
cp build/dsrd "$out/"
# The CLI and the trainer, where this tree has them.
for prog in dsr dsr-train; do
    if [ -x "build/$prog" ]; then cp "build/$prog" "$out/"; fi
done
strip --strip-unneeded "$out"/*
ls -l "$out"
