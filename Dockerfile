# dsrd container image.  Build:  docker build -t dsr .
#
# Stage 1 builds on bare Debian bookworm exactly as README says
# (`make deps && make`), stage 2 holds only the runtime libraries and the
# programs.  Both stages run scripts from deploy/ so that CI can prove the
# recipe without a Docker engine (deploy/test-image.sh runs the same scripts
# in debootstrap chroots).
#
# Every dsrd flag is set through its DSR_* environment variable, e.g.
#   docker run -p 8080:8080 -v /srv/janus-pro-1b:/models:ro \
#       -e DSR_MODEL=/models -e DSR_API_KEY=... dsr
# Without DSR_MODEL, dsrd serves its embedded default model, dsr-shapes
# (models/shapes: trained on the shapes world, compiled into the binary).

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY . .
RUN deploy/image-build.sh /out

FROM debian:bookworm-slim
COPY deploy/image-runtime.sh /tmp/image-runtime.sh
RUN /tmp/image-runtime.sh && rm /tmp/image-runtime.sh
COPY --from=build /out/ /usr/local/bin/

# Inside a container dsrd must listen on all interfaces to be reachable;
# keys (DSR_API_KEY, DSR_ADMIN_KEY) come from the orchestrator's secrets.
# OMP_WAIT_POLICY stays libgomp's default: dsrd links OpenBLAS's OpenMP
# build, whose GEMMs share the OpenMP team (README, Threading).
ENV DSR_HOST=0.0.0.0 \
    DSR_PORT=8080 \
    DSR_CHECKPOINT_DIR=/checkpoints
VOLUME ["/models", "/checkpoints"]
EXPOSE 8080
USER dsr:dsr
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${DSR_PORT}/health" >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/dsrd"]
