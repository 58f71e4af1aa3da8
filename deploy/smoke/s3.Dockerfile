# Stand-in for minio/minio and minio/mc in the smoke test (deploy/smoke/compose.smoke.yaml): no image
# registry is reachable here. s3s-fs is a real S3 server (the S3 API over a directory, SigV4 checked),
# installed on the host with `cargo install s3s-fs --version 0.14.1 --features binary --locked` and copied
# in. curl signs requests itself (--aws-sigv4), so the same image also creates the bucket (minio-init) and
# answers the healthcheck.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data
COPY s3s-fs /usr/local/bin/s3s-fs
COPY s3-entrypoint.sh /usr/local/bin/s3-server
EXPOSE 9000
CMD ["/usr/local/bin/s3-server", "/data"]
