# One image with every binary of the workspace; compose picks the command per service.
# Build: docker build -t churn-platform .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p synthesizer -p classifier -p scheduler -p churnctl \
 && mkdir -p /out \
 && cp target/release/synthesizer target/release/classifier target/release/scheduler target/release/churnctl /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/churn --create-home churn \
 && mkdir -p /var/lib/churn/data && chown churn /var/lib/churn/data
COPY --from=build /out/ /usr/local/bin/
USER churn
WORKDIR /var/lib/churn
ENV BIND_ADDRESS=0.0.0.0 LOG_FORMAT=json
