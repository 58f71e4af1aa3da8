# Stand-in for prom/prometheus in the smoke test (deploy/smoke/compose.smoke.yaml): no image registry is
# reachable here, so this is Debian bookworm's prometheus package on the local debian:bookworm-slim, laid
# out as the official image is: the binary as entrypoint (the service's `command` is its flags), storage in
# /prometheus owned by nobody, config under /etc/prometheus (the compose file mounts ./prometheus there),
# and wget for the service's healthcheck.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown nobody:nogroup /prometheus
USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
