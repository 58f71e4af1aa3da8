# Stand-in for caddy:2.8.4-alpine in the smoke test (deploy/smoke/compose.smoke.yaml): no image registry is
# reachable here, so this is Debian bookworm's caddy package (2.6.2) on the local debian:bookworm-slim, laid
# out as the official image is: its data (certificates, the internal CA) in /data and config in /config
# (XDG_DATA_HOME, XDG_CONFIG_HOME), the Caddyfile at /etc/caddy/Caddyfile (the compose file mounts
# deploy/caddy/Caddyfile there), run as root with only the capabilities compose grants, and wget for the
# service's healthcheck. The smoke also runs it as the Metabase stand-in (`caddy respond`; curl for that
# service's healthcheck).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends caddy wget curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /config /etc/caddy
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
EXPOSE 80 443
VOLUME ["/data", "/config"]
WORKDIR /srv
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
