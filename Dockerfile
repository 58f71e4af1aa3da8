# The platform's images, built by `docker compose build` (docker-compose.yml names the targets):
#   runtime   churn-platform: every binary of the workspace; compose picks the command per service
#   scheduler churn-scheduler: runtime plus the pinned dbt venv and the dbt/ project the dbt job runs
# Build by hand: docker build --target scheduler -t churn-scheduler:0.1.0 .
# No HEALTHCHECK here: one image runs as three services on three ports (and as one-shots), so each
# service's healthcheck (its /ready) is in docker-compose.yml.
#checkov:skip=CKV_DOCKER_2:The healthchecks are per service in docker-compose.yml; one image serves several ports and one-shot commands.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The cargo registry and target folder are cache mounts kept between builds: a rebuild compiles only what
# changed. (scripts/compose-smoke replaces this stage with host-built binaries: no rust image here.)
COPY . .
# Queries are checked against the committed .sqlx/ (no database during the build).
ENV SQLX_OFFLINE=true
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p synthesizer -p classifier -p scheduler -p churnctl \
 && mkdir -p /out \
 && cp target/release/synthesizer target/release/classifier target/release/scheduler target/release/churnctl /out/

# dbt in a venv built by the repository's own scripts/venv from dbt/requirements.txt (exact pins), at the
# path the scheduler stage uses, so the venv's interpreter links stay valid after the copy.
FROM debian:bookworm-slim AS dbt
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/venv scripts/venv
COPY dbt/requirements.txt dbt/requirements.txt
RUN CHURN_VENV=/opt/dbt PYTHON=python3 scripts/venv --dbt \
 && find /opt/dbt -name '__pycache__' -prune -exec rm -rf {} + \
 && rm -rf /root/.cache

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/churn --create-home churn \
 && mkdir -p /var/lib/churn/data /var/lib/churn/metabase-state \
 && chown churn /var/lib/churn/data /var/lib/churn/metabase-state
COPY --from=build /out/ /usr/local/bin/
USER churn
WORKDIR /var/lib/churn
ENV BIND_ADDRESS=0.0.0.0 LOG_FORMAT=json

FROM runtime AS scheduler
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/churn/var/dbt-target && chown -R churn /var/lib/churn/var
COPY --from=dbt /opt/dbt /opt/dbt
COPY --chown=churn dbt /var/lib/churn/dbt
USER churn
ENV DBT_EXECUTABLE=/opt/dbt/bin/dbt DBT_PROJECT_DIR=/var/lib/churn/dbt DO_NOT_TRACK=1
