# syntax=docker/dockerfile:1
#
# One image per worker.  `faas-cli build -f stack.yml` passes the worker's
# name as the build argument WORKER (see build_args in stack.yml); by hand,
# always with the full image name (under podman a short name becomes
# localhost/... and no longer matches stack.yml or the manifests):
#
#   podman build --network host --build-arg WORKER=file-transformer \
#     -t docker.io/dataretailx/file-transformer:0.1.0 .
#
# Three stages, so that everything that does not depend on the worker is
# built once and shared by the three images (the layer cache serves the
# second and third build):
#   build         compiles all three workers on Debian bookworm;
#   runtime-base  debian:bookworm-slim with only the shared libraries the
#                 workers link against (tests/deploy/test_runtime_libs.py
#                 checks the list against the binaries' DT_NEEDED entries)
#                 and a numeric non-root user;
#   runtime       runtime-base plus the one worker named by WORKER, with an
#                 exec-form entrypoint, so nothing needs a shell at run time.
# Each apt layer cleans its own caches: an imported or third-party bookworm
# base may not carry the official image's docker-clean setting, and then
# about 80 MB of /var/cache/apt stays in the image.
# Every image also holds dxctl, the operator's command, beside the worker
# (`kubectl exec deploy/status-checker -- dxctl status`).

ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential meson ninja-build pkg-config python3 \
      libnats-dev libcjson-dev libcsv-dev libprotobuf-c-dev protobuf-c-compiler \
      libmicrohttpd-dev libssh-dev libssl-dev libxxhash-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
WORKDIR /src
# Only the workers' sources: -Dtests=false keeps meson out of tests/ and
# bench/, so an edit there does not rebuild the images.
COPY meson.build meson_options.txt ./
COPY proto/ proto/
COPY workers/ workers/
# /out/<worker>/ is the file tree of each worker's image: the worker, its
# `worker` link and dxctl; file-transformer's also has the
# file-transformer-service that `file-transformer` execs to run the service.
RUN meson setup /build --buildtype=release --prefix=/usr/local -Dtests=false \
 && ninja -C /build workers/daily-checker/daily-checker \
      workers/file-transformer/file-transformer workers/file-transformer/file-transformer-service \
      workers/status-checker/status-checker workers/dxctl/dxctl \
 && strip --strip-unneeded /build/workers/dxctl/dxctl \
 && for w in daily-checker file-transformer status-checker; do \
      install -D -m 0755 "/build/workers/$w/$w" "/out/$w/usr/local/bin/$w" \
      && strip --strip-unneeded "/out/$w/usr/local/bin/$w" \
      && install -m 0755 /build/workers/dxctl/dxctl "/out/$w/usr/local/bin/dxctl" \
      && ln -s "$w" "/out/$w/usr/local/bin/worker" || exit 1; \
    done \
 && install -m 0755 /build/workers/file-transformer/file-transformer-service \
      /out/file-transformer/usr/local/bin/file-transformer-service \
 && strip --strip-unneeded /out/file-transformer/usr/local/bin/file-transformer-service
# Only from here on does the build depend on WORKER.
ARG WORKER
RUN case "${WORKER}" in \
      daily-checker|file-transformer|status-checker) ;; \
      *) echo "build with --build-arg WORKER=daily-checker|file-transformer|status-checker (got '${WORKER}')" >&2; exit 2 ;; \
    esac \
 && cp -a "/out/${WORKER}" /image

FROM ${RUNTIME_IMAGE} AS runtime-base
# Runtime shared libraries only (no -dev packages, no compiler).  tzdata is
# there because the workers compute "today" in TZ.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnats3.4 libcjson1 libcsv3 libprotobuf-c1 libmicrohttpd12 libssh-4 libssl3 libxxhash0 \
      tzdata \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log \
 && groupadd --gid 10001 dataretailx \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dataretailx
# OpenFaaS and Kubernetes talk to the worker on 8080; it must listen on all
# interfaces inside the container (the worker's own default is loopback).
ENV PORT=8080 \
    HTTP_ADDR=0.0.0.0 \
    TZ=UTC
EXPOSE 8080

FROM runtime-base AS runtime
ARG WORKER
COPY --from=build /image/ /
LABEL org.opencontainers.image.title="dataretailx-${WORKER}" \
      org.opencontainers.image.description="DataRetailX order pipeline worker: ${WORKER}"
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/worker"]
