# Stand-in for postgres:16.6-bookworm in the smoke test (deploy/smoke/compose.smoke.yaml): no image registry
# is reachable here, so this builds PostgreSQL from Debian's own package on the local debian:bookworm-slim.
# Debian bookworm ships PostgreSQL 15 (the project's tests run on 15 too). It honours what docker-compose.yml uses
# of the official image: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, data in /var/lib/postgresql/data
# (initialised on first start), port 5432 for every host with a password, and pg_isready on PATH for the
# healthcheck.
FROM debian:bookworm-slim
# No "main" cluster from the package's postinst: the entrypoint makes one in PGDATA, like the official image.
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
