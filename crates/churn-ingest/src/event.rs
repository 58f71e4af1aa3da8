//! MinIO's bucket-notification body (the S3 event format): which objects were created.

use serde::Deserialize;

use crate::Error;

/// One created object named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: String,
    /// The key within the bucket, URL-decoded.
    pub key: String,
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3,
}

#[derive(Debug, Deserialize)]
struct S3 {
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Object {
    key: String,
}

/// The objects an event body says were created (`s3:ObjectCreated:*`); other events are ignored.
pub fn created_objects(body: &[u8]) -> Result<Vec<CreatedObject>, Error> {
    let expected = "expected MinIO's notification JSON with Records[].s3.bucket.name and Records[].s3.object.key";
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Error::Event(format!("{e}; {expected}")))?;
    // serde would read a struct from an array too; an event is an object.
    if !value.is_object() {
        return Err(Error::Event(format!(
            "the body is not a JSON object; {expected}"
        )));
    }
    let body: Body =
        serde_json::from_value(value).map_err(|e| Error::Event(format!("{e}; {expected}")))?;
    body.records
        .into_iter()
        .filter(|r| r.event_name.is_empty() || r.event_name.starts_with("s3:ObjectCreated:"))
        .map(|r| {
            Ok(CreatedObject {
                bucket: r.s3.bucket.name,
                key: decode_key(&r.s3.object.key)?,
            })
        })
        .collect()
}

/// Event keys are URL-encoded the way query strings are (`+` for a space, `%2F` for `/`).
fn decode_key(raw: &str) -> Result<String, Error> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| Error::Event(format!("object key {raw:?} is not URL-encoded UTF-8")))
}

/// The key relative to a store rooted at `prefix` inside the bucket, or none when the key lies outside.
pub fn relative_key<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Some(key);
    }
    key.strip_prefix(prefix)?.strip_prefix('/')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MINIO_EVENT: &str = r#"{"EventName":"s3:ObjectCreated:Put","Key":"churn/landing/new customers.csv","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-11-26T03:00:00.000Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minioadmin"},"requestParameters":{"principalId":"minioadmin","region":"","sourceIPAddress":"10.0.0.2"},"responseElements":{"x-amz-id-2":"dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8","x-amz-request-id":"1729E6A6F4B9E4C6","x-minio-deployment-id":"9f1c","x-minio-origin-endpoint":"http://10.0.0.3:9000"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"churn","ownerIdentity":{"principalId":"minioadmin"},"arn":"arn:aws:s3:::churn"},"object":{"key":"landing%2Fnew+customers.csv","size":1024,"eTag":"a4c3b2","contentType":"text/csv","userMetadata":{"content-type":"text/csv"},"sequencer":"1729E6A6F4D5C3A0"}},"source":{"host":"10.0.0.2","port":"","userAgent":"MinIO (linux; amd64) minio-go/v7.0.70"}}]}"#;

    #[test]
    fn a_minio_put_event_names_the_bucket_and_the_decoded_key() {
        let objects = created_objects(MINIO_EVENT.as_bytes()).unwrap();
        assert_eq!(
            objects,
            vec![CreatedObject {
                bucket: "churn".into(),
                key: "landing/new customers.csv".into()
            }]
        );
    }

    #[test]
    fn removal_events_name_nothing_and_garbage_is_an_error() {
        let removed = MINIO_EVENT.replace(
            "s3:ObjectCreated:Put\",\"userIdentity",
            "s3:ObjectRemoved:Delete\",\"userIdentity",
        );
        assert!(created_objects(removed.as_bytes()).unwrap().is_empty());
        let err = created_objects(b"not json").unwrap_err();
        assert!(err.to_string().contains("Records"), "{err}");
    }

    #[test]
    fn keys_are_taken_relative_to_the_store_prefix() {
        assert_eq!(relative_key("landing/a.csv", ""), Some("landing/a.csv"));
        assert_eq!(
            relative_key("env/landing/a.csv", "env"),
            Some("landing/a.csv")
        );
        assert_eq!(relative_key("other/landing/a.csv", "env"), None);
    }
}
