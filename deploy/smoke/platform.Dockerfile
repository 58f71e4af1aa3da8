# The production Dockerfile's runtime stage, byte for byte except the COPY: the binaries come from a host
# build (`cargo build --release -p synthesizer -p classifier -p scheduler -p churnctl`) because the build
# stage's rust image cannot be pulled here. scripts/compose-smoke checks that the two stages still match,
# puts the four binaries in bin/ of the build context and tags the result churn-platform:latest.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/churn --create-home churn \
 && mkdir -p /var/lib/churn/data && chown churn /var/lib/churn/data
COPY bin/ /usr/local/bin/
USER churn
WORKDIR /var/lib/churn
ENV BIND_ADDRESS=0.0.0.0 LOG_FORMAT=json
