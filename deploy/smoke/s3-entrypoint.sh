#!/bin/sh
# Serves the S3 API on :9000 from the directory $1 (default /data) with MinIO's credential variables,
# so the minio service's environment in docker-compose.yml works unchanged.
set -eu
: "${MINIO_ROOT_USER:?MINIO_ROOT_USER must be set}" "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD must be set}"
dir=${1:-/data}
mkdir -p "$dir"
# s3s-fs installs no SIGTERM handler and, as PID 1, would ignore `stop`: forward the signal instead.
s3s-fs --host 0.0.0.0 --port 9000 --access-key "$MINIO_ROOT_USER" --secret-key "$MINIO_ROOT_PASSWORD" "$dir" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
status=0
wait "$pid" || status=$?
# A forwarded signal interrupts the first wait; the second collects the server's own exit status.
if kill -0 "$pid" 2>/dev/null; then status=0; wait "$pid" || status=$?; fi
exit "$status"
