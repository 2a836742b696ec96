# qdq-server image: two stages on debian:bookworm-slim.
#
#   docker build -t qdq-server .
#   docker run --rm -p 8080:8080 -p 8081:8081 --cpus 2 --memory 2g -e QDQ_LOG_FORMAT=json qdq-server
#
# 8080 is HTTP; 8081 is gRPC (KServe v2's GRPCInferenceService and grpc.health.v1).
#
# With podman, build with --format docker: its default (OCI) format has no HEALTHCHECK and
# drops it.
#
#   podman build --format docker -t qdq-server .
#
# Every RUN step is the project's own installer or a make target that CI runs too
# (tests/deploy/test_dockerfile.sh checks this and runs the installer steps; the installed
# layout is run as a non-root user by tests/deploy/test_install_layout.sh; the image itself is
# built and run under podman by tests/deploy/test_container.sh). Configuration is by QDQ_*
# variables or flags after the image name (qdq-server --help lists them). The workers and HTTP
# threads follow the container's CPU limit (--cpus 2: two of each), the memory budget
# (--max-memory) three quarters of its memory limit (--memory 2g: 1.5G). Whole checkpoints are
# spooled to the volume /var/spool/qdq (disk, not memory; see VOLUME below).
#
# The image also holds the qdq command, the same transform on checkpoint files with no server:
#
#   podman run --rm --entrypoint qdq -v "$PWD:/data" qdq-server --num-bits 8 /data/in.safetensors /data/out.safetensors
#
# (the directory must be writable by uid 10001; `--user "$(id -u)"` runs it as yourself).

# Build stage: compilers and -dev packages from the installer's default list.
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN sh scripts/install-deps.sh
COPY . .
RUN make -j"$(nproc)" all && make install DESTDIR=/out PREFIX=/usr/local

# Runtime stage: the runtime libraries (the installer's --runtime list) and the binary only.
FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN sh /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
    && groupadd --gid 10001 qdq \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin qdq \
    && install -d -o 10001 -g 10001 -m 0700 /var/spool/qdq
# The server, and the qdq command for checkpoint files (make install installs both).
COPY --from=build /out/usr/local/bin/qdq-server /usr/local/bin/qdq-server
COPY --from=build /out/usr/local/bin/qdq /usr/local/bin/qdq
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV QDQ_LISTEN=0.0.0.0:8080 QDQ_GRPC_LISTEN=0.0.0.0:8081 QDQ_SPOOL_DIR=/var/spool/qdq
# A whole checkpoint's answer (POST /quantize-dequantize, application/x-safetensors) waits in a
# file of QDQ_SPOOL_DIR while the checkpoint streams in: as large as the checkpoint, up to
# --max-checkpoint-inflight (2) at once. Not /tmp: podman's --read-only mounts a tmpfs there,
# which is memory, counted against the container's memory limit (a 1 GiB checkpoint under
# --memory 1g is an OOM kill). A volume is disk: `docker run` and `podman run` make an
# anonymous one per container (read-only root or not; --rm removes it with the container),
# `-v qdq-spool:/var/spool/qdq` names one, Kubernetes mounts an emptyDir (deploy/k8s).
VOLUME /var/spool/qdq
EXPOSE 8080 8081
# The binary checks itself, no curl: GET /healthz from the container's server (PID 1), at the
# address its own flags and variables give (0.0.0.0 is asked on 127.0.0.1, [::] on [::1]).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/qdq-server", "--healthcheck"]
# Exec form: the server is PID 1 and gets SIGTERM itself, so it drains and exits 0
# (up to QDQ_DRAIN_TIMEOUT, 30 s by default: `docker stop -t 40` waits long enough).
ENTRYPOINT ["/usr/local/bin/qdq-server"]
