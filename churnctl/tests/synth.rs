//! `churnctl synth fit|sample|report` end to end, and `--register` against a real registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use churn_core::CustomerReader;
use churn_testkit::{TestDb, TestS3, seed_data_path};

fn churnctl(args: &[&str], env: &[(&str, String)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_churnctl"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("churnctl runs");
    assert!(
        out.status.success(),
        "churnctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn fit_then_sample_writes_valid_customers_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("synth.json");
    let seed = seed_data_path();
    let out = churnctl(
        &[
            "synth",
            "fit",
            "--data",
            seed.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fitted on 7043 rows"), "{text}");
    assert!(text.contains("family"), "{text}");

    let sample = |name: &str, seed: &str| {
        let path = dir.path().join(name);
        churnctl(
            &[
                "synth",
                "sample",
                "--model",
                model.to_str().unwrap(),
                "-n",
                "3000",
                "--seed",
                seed,
                "--out",
                path.to_str().unwrap(),
            ],
            &[],
        );
        std::fs::read(path).unwrap()
    };
    let a = sample("a.csv", "5");
    let b = sample("b.csv", "5");
    let c = sample("c.csv", "6");
    assert_eq!(a, b);
    assert_ne!(a, c);
    let rows: Vec<_> = CustomerReader::new(a.as_slice()).unwrap().collect();
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.iter().all(Result::is_ok),
        "every sampled row passes validation"
    );
    assert!(a.starts_with(b"Country,State,City,Zip Code,Latitude,Longitude,Gender"));

    let out = churnctl(
        &[
            "synth",
            "report",
            "--model",
            model.to_str().unwrap(),
            "--data",
            seed.to_str().unwrap(),
            "-n",
            "2000",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("overall quality"), "{text}");
    assert!(text.contains("all four rules       1.0000"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fit_register_makes_the_first_version_champion_and_sample_reads_it_back() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let mut env: Vec<(&str, String)> = s3.env();
    env.push(("DATABASE_URL", db.url.clone()));
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("synth.json");
    let seed = seed_data_path();
    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            churnctl(&args, &env)
        })
    };
    let fit_args: Vec<String> = [
        "synth",
        "fit",
        "--data",
        seed.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--register",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = run(fit_args.clone(), env.clone()).await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("registered synthesizer version 1 (champion")
    );
    let out = run(fit_args, env.clone()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("registered synthesizer version 2") && !text.contains("champion"),
        "{text}"
    );

    let csv = dir.path().join("from-registry.csv");
    let sample_args: Vec<String> = [
        "synth",
        "sample",
        "--model",
        "registry:synthesizer@champion",
        "-n",
        "100",
        "--out",
        csv.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    run(sample_args, env).await.unwrap();
    let rows = CustomerReader::open(&csv)
        .unwrap()
        .filter(Result::is_ok)
        .count();
    assert_eq!(rows, 100);
}
