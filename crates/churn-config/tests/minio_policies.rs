//! The MinIO policies of deploy/minio (one per service, attached to its user by minio-init) keep the
//! AWS IAM policy grammar MinIO accepts, and give each service its prefixes only. MinIO cannot run here,
//! so this is the check: the grammar of the IAM JSON policy reference (Version, Statement, Sid, Effect,
//! Action, Resource, Condition), S3 action names, and S3 resource ARNs, with bucket-level actions on the
//! bucket and object-level actions on objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// The bucket minio-init substitutes for `${MINIO_BUCKET}` (sample.env's default).
const BUCKET: &str = "churn";

/// S3 actions on a bucket, and on the objects in it, that these policies may name.
const BUCKET_ACTIONS: [&str; 3] = [
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketLocation",
];
const OBJECT_ACTIONS: [&str; 5] = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
];
const STATEMENT_KEYS: [&str; 5] = ["Sid", "Effect", "Action", "Resource", "Condition"];
const CONDITION_OPERATORS: [&str; 4] = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
];
const CONDITION_KEYS: [&str; 3] = ["s3:prefix", "s3:delimiter", "s3:max-keys"];

/// Each service, and the object prefixes its code writes (w) or only reads (r).
const SERVICES: [(&str, &[(&str, char)]); 3] = [
    ("classifier", &[("models/", 'r')]),
    ("synthesizer", &[("models/synthesizer/", 'w')]),
    (
        "scheduler",
        &[
            ("models/", 'w'),
            ("landing/", 'w'),
            ("processed/", 'w'),
            ("failed/", 'w'),
            ("quarantine/", 'w'),
            ("score/", 'w'),
            ("scored/", 'w'),
        ],
    ),
];

fn policy(service: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/minio")
        .join(format!("{service}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_json(&text.replace("${MINIO_BUCKET}", BUCKET), &path)
}

/// Parses JSON (a subset of YAML) and refuses what JSON would not hold: YAML's comments and bare words.
fn parse_json(text: &str, path: &Path) -> Value {
    assert!(
        text.trim_start().starts_with('{'),
        "{}: a JSON object",
        path.display()
    );
    assert!(
        !text.contains('#'),
        "{}: JSON has no comments",
        path.display()
    );
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A string or a list of strings (IAM accepts both for Action and Resource).
fn strings(value: &Value, what: &str) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{what}: {v:?} is not a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("{what}: expected a string or a list, found {other:?}"),
    }
}

/// Problems with one policy's grammar.
fn grammar_problems(service: &str, policy: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let top = policy.as_mapping().expect("a policy is an object");
    for key in top.keys() {
        if !matches!(key.as_str(), Some("Version" | "Statement" | "Id")) {
            problems.push(format!("{service}: unknown top-level key {key:?}"));
        }
    }
    if policy["Version"].as_str() != Some("2012-10-17") {
        problems.push(format!("{service}: Version must be \"2012-10-17\""));
    }
    let statements = policy["Statement"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    if statements.is_empty() {
        problems.push(format!("{service}: Statement must be a non-empty list"));
    }
    let mut sids = BTreeSet::new();
    for statement in &statements {
        let sid = statement["Sid"].as_str().unwrap_or_default().to_owned();
        let at = format!("{service} {sid}");
        if sid.is_empty()
            || !sid.chars().all(|c| c.is_ascii_alphanumeric())
            || !sids.insert(sid.clone())
        {
            problems.push(format!("{at}: each Sid is unique and alphanumeric"));
        }
        for key in statement.as_mapping().unwrap().keys() {
            if !STATEMENT_KEYS.contains(&key.as_str().unwrap_or_default()) {
                problems.push(format!("{at}: unknown key {key:?}"));
            }
        }
        if !matches!(statement["Effect"].as_str(), Some("Allow" | "Deny")) {
            problems.push(format!("{at}: Effect must be Allow or Deny"));
        }
        let actions = strings(&statement["Action"], &at);
        let resources = strings(&statement["Resource"], &at);
        let on_bucket = actions.iter().all(|a| BUCKET_ACTIONS.contains(&a.as_str()));
        let on_objects = actions.iter().all(|a| OBJECT_ACTIONS.contains(&a.as_str()));
        if !(on_bucket || on_objects) {
            problems.push(format!(
                "{at}: {actions:?} mixes bucket and object actions or names unknown ones"
            ));
        }
        for resource in &resources {
            let Some(path) = resource.strip_prefix("arn:aws:s3:::") else {
                problems.push(format!("{at}: {resource} is not an S3 ARN"));
                continue;
            };
            let (bucket, key) = path
                .split_once('/')
                .map_or((path, None), |(b, k)| (b, Some(k)));
            if bucket != BUCKET {
                problems.push(format!("{at}: {resource} is not in the bucket {BUCKET}"));
            }
            match key {
                None if on_objects => {
                    problems.push(format!("{at}: object actions on the bucket {resource}"))
                }
                Some(_) if on_bucket => {
                    problems.push(format!("{at}: bucket actions on objects {resource}"))
                }
                Some(key) if key.is_empty() || key == "*" => {
                    problems.push(format!(
                        "{at}: {resource} is the whole bucket, not a prefix"
                    ));
                }
                _ => {}
            }
        }
        if let Some(condition) = statement.get("Condition") {
            for (operator, keys) in condition.as_mapping().expect("Condition is an object") {
                if !CONDITION_OPERATORS.contains(&operator.as_str().unwrap_or_default()) {
                    problems.push(format!("{at}: unknown condition operator {operator:?}"));
                }
                for (key, values) in keys.as_mapping().expect("a condition maps keys to values") {
                    if !CONDITION_KEYS.contains(&key.as_str().unwrap_or_default()) {
                        problems.push(format!("{at}: unknown condition key {key:?}"));
                    }
                    strings(values, &at);
                }
            }
        } else if on_bucket {
            problems.push(format!(
                "{at}: listing must be limited to the service's prefixes (s3:prefix)"
            ));
        }
    }
    problems
}

/// Whether a statement of `policy` allows `action` on `resource` (wildcards `*` at the end only).
fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    policy["Statement"].as_sequence().unwrap().iter().any(|s| {
        s["Effect"].as_str() == Some("Allow")
            && strings(&s["Action"], "").iter().any(|a| a == action)
            && strings(&s["Resource"], "")
                .iter()
                .any(|r| match r.strip_suffix('*') {
                    Some(prefix) => resource.starts_with(prefix),
                    None => resource == r,
                })
    })
}

#[test]
fn every_policy_keeps_the_iam_policy_grammar() {
    let problems: Vec<String> = SERVICES
        .iter()
        .flat_map(|(service, _)| grammar_problems(service, &policy(service)))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A key set to a bad value at a path of the policy, and what the check must say.
type BadValue = (
    &'static str,
    &'static [&'static str],
    fn() -> Value,
    &'static str,
);

#[test]
fn the_grammar_check_refuses_what_minio_would() {
    fn list() -> Value {
        Value::String("s3:ListBucket".to_owned())
    }
    fn mixed() -> Value {
        Value::Sequence(vec![list(), Value::String("s3:GetObject".to_owned())])
    }
    let cases: [BadValue; 6] = [
        (
            "Version",
            &[],
            || Value::String("2008-10-17".to_owned()),
            "Version must be",
        ),
        (
            "Effect",
            &["Statement", "0"],
            || Value::String("Permit".to_owned()),
            "Effect must be",
        ),
        (
            "Action",
            &["Statement", "1"],
            || Value::String("s3:GetObjekt".to_owned()),
            "unknown ones",
        ),
        (
            "Action",
            &["Statement", "1"],
            list,
            "bucket actions on objects",
        ),
        (
            "Action",
            &["Statement", "1"],
            mixed,
            "mixes bucket and object",
        ),
        (
            "Resource",
            &["Statement", "1"],
            || Value::String("arn:aws:s3:::churn/*".to_owned()),
            "whole bucket",
        ),
    ];
    for (key, path, value, expected) in cases {
        let mut bad = policy("classifier");
        let mut target = &mut bad;
        for step in path {
            target = match step.parse::<usize>() {
                Ok(i) => &mut target[i],
                Err(_) => &mut target[*step],
            };
        }
        target[key] = value();
        let problems = grammar_problems("classifier", &bad).join("\n");
        assert!(
            problems.contains(expected),
            "{key} = {:?}: {expected} in {problems}",
            value()
        );
    }
}

#[test]
fn each_service_reaches_its_prefixes_and_nothing_else() {
    let object = |key: &str| format!("arn:aws:s3:::{BUCKET}/{key}");
    for (service, prefixes) in SERVICES {
        let policy = policy(service);
        for (prefix, access) in prefixes {
            let key = object(&format!("{prefix}x.bin"));
            assert!(
                allows(&policy, "s3:GetObject", &key),
                "{service} reads {prefix}"
            );
            assert_eq!(
                allows(&policy, "s3:PutObject", &key),
                *access == 'w',
                "{service} writes {prefix}: {}",
                *access == 'w'
            );
        }
        let granted: Vec<&str> = prefixes.iter().map(|(p, _)| *p).collect();
        for elsewhere in ["landing/", "models/churn-classifier/", "backups/", "x"] {
            if granted.iter().any(|p| elsewhere.starts_with(p)) {
                continue;
            }
            let key = object(&format!("{elsewhere}x.bin"));
            for action in OBJECT_ACTIONS {
                assert!(
                    !allows(&policy, action, &key),
                    "{service} must not {action} {elsewhere}"
                );
            }
        }
    }
}
