//! The object store against a real S3 server (s3s-fs over HTTP on 127.0.0.1) and a local directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_store::{ObjectStoreHandle, ObjectStoreUrl};
use churn_testkit::TestS3;
use object_store::ObjectStoreExt;
use object_store::path::Path;

#[tokio::test]
async fn objects_round_trip_through_the_s3_server() {
    let s3 = TestS3::start().await;
    let handle = s3.open();
    handle.ping().await.unwrap();
    let path = Path::from("models/churn-classifier/1/model.json");
    handle
        .store
        .put(&path, b"{\"weights\": [1, 2]}".to_vec().into())
        .await
        .unwrap();
    let bytes = handle
        .store
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"{\"weights\": [1, 2]}");
    // The object is really on the server's disk, not in a client-side cache.
    assert!(
        s3.bucket_dir()
            .join("models/churn-classifier/1/model.json")
            .exists()
    );
}

#[tokio::test]
async fn wrong_credentials_are_refused_by_the_s3_server() {
    let s3 = TestS3::start().await;
    let mut options = s3.options();
    options.secret_access_key = Some(churn_config::Secret::new("wrong-secret"));
    let handle = ObjectStoreHandle::open(&s3.url(), &options).unwrap();
    assert!(handle.ping().await.is_err());
}

#[tokio::test]
async fn a_stopped_s3_server_fails_the_ping_and_a_restarted_one_passes() {
    let mut s3 = TestS3::start().await;
    let handle = s3.open();
    handle.ping().await.unwrap();
    s3.stop().await;
    assert!(handle.ping().await.is_err());
    s3.restart().await;
    handle.ping().await.unwrap();
}

#[tokio::test]
async fn a_prefix_in_the_url_scopes_every_key() {
    let s3 = TestS3::start().await;
    let url: ObjectStoreUrl = format!("s3://{}/team/prod", s3.bucket).parse().unwrap();
    let handle = ObjectStoreHandle::open(&url, &s3.options()).unwrap();
    handle
        .store
        .put(&Path::from("a.txt"), b"x".to_vec().into())
        .await
        .unwrap();
    assert!(s3.bucket_dir().join("team/prod/a.txt").exists());
}

#[tokio::test]
async fn a_file_url_stores_objects_in_that_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url: ObjectStoreUrl = format!("file://{}/objects", dir.path().display())
        .parse()
        .unwrap();
    let handle = ObjectStoreHandle::open(&url, &Default::default()).unwrap();
    handle
        .store
        .put(&Path::from("k/v.bin"), vec![1u8, 2, 3].into())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("objects/k/v.bin")).unwrap(),
        vec![1, 2, 3]
    );
}
