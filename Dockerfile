# syntax=docker/dockerfile:1
#
# One image per worker.  `faas-cli build -f stack.yml` passes the worker's
# name as the build argument WORKER (see build_args in stack.yml); by hand:
#
#   docker build --build-arg WORKER=file-transformer -t dataretailx/file-transformer:0.1.0 .
#
# Every image also holds dxctl, the operator's command, beside the worker
# (`kubectl exec deploy/status-checker -- dxctl status`).
#
# The build stage compiles the whole meson project on Debian bookworm; the
# runtime stage is debian:bookworm-slim with only the shared libraries the
# workers link against (tests/deploy/test_runtime_libs.py checks the list
# against the binaries' DT_NEEDED entries), a numeric non-root user, and an
# exec-form entrypoint, so nothing needs a shell at run time.

ARG DEBIAN_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
ARG WORKER
RUN case "${WORKER}" in \
      daily-checker|file-transformer|status-checker) ;; \
      *) echo "build with --build-arg WORKER=daily-checker|file-transformer|status-checker (got '${WORKER}')" >&2; exit 2 ;; \
    esac
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential meson ninja-build pkg-config python3 \
      libnats-dev libcjson-dev libcsv-dev libprotobuf-c-dev protobuf-c-compiler \
      libmicrohttpd-dev libssh-dev libssl-dev libxxhash-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY proto/ proto/
COPY workers/ workers/
# The root meson.build descends into tests/, so its meson files must be there
# even though no test runs in the image.
COPY tests/ tests/
COPY bench/ bench/
RUN meson setup /build --buildtype=release --prefix=/usr/local \
 && ninja -C /build "workers/${WORKER}/${WORKER}" workers/dxctl/dxctl \
 && install -D -m 0755 "/build/workers/${WORKER}/${WORKER}" "/out/usr/local/bin/${WORKER}" \
 && install -D -m 0755 /build/workers/dxctl/dxctl /out/usr/local/bin/dxctl \
 && strip --strip-unneeded "/out/usr/local/bin/${WORKER}" /out/usr/local/bin/dxctl \
 && ln -s "${WORKER}" /out/usr/local/bin/worker

FROM ${RUNTIME_IMAGE} AS runtime
ARG WORKER
# Runtime shared libraries only (no -dev packages, no compiler).  tzdata is
# there because the workers compute "today" in TZ.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnats3.4 libcjson1 libcsv3 libprotobuf-c1 libmicrohttpd12 libssh-4 libssl3 libxxhash0 \
      tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 dataretailx \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dataretailx
COPY --from=build /out/ /
LABEL org.opencontainers.image.title="dataretailx-${WORKER}" \
      org.opencontainers.image.description="DataRetailX order pipeline worker: ${WORKER}"
# OpenFaaS and Kubernetes talk to the worker on 8080; it must listen on all
# interfaces inside the container (the worker's own default is loopback).
ENV PORT=8080 \
    HTTP_ADDR=0.0.0.0 \
    TZ=UTC
EXPOSE 8080
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/worker"]
