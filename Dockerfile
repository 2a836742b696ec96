# qdq-server image. Every step is a script or make target that CI runs too:
# scripts/install-deps.sh, make all, make install.
#
#   docker build -t qdq-server .
#   docker run --rm -p 8080:8080 qdq-server                 # QDQ_* variables configure it
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN sh scripts/install-deps.sh
COPY . .
RUN make -j"$(nproc)" all && make install DESTDIR=/out PREFIX=/usr/local

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN sh /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin qdq
COPY --from=build /out/usr/local/bin/qdq-server /usr/local/bin/qdq-server
USER 10001
ENV QDQ_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/qdq-server", "--healthcheck"]
# Exec form: the server is PID 1 and gets SIGTERM, so it drains and exits 0.
ENTRYPOINT ["/usr/local/bin/qdq-server"]
