//! `churnctl train|predict|evaluate|models` end to end against a real registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use churn_testkit::{TestDb, TestS3, seed_data_path};

fn run(args: Vec<String>, env: Vec<(&'static str, String)>) -> tokio::task::JoinHandle<Output> {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_churnctl"))
            .args(&args)
            .envs(env)
            .output()
            .expect("churnctl runs")
    })
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn train_register_predict_evaluate_and_models_work_together() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let mut env = s3.env();
    env.push(("DATABASE_URL", db.url.clone()));
    let seed = seed_data_path().to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");

    let train = args(&[
        "train",
        "--data",
        &seed,
        "--time-budget-secs",
        "3",
        "--register",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let text = ok(&run(train.clone(), env.clone()).await.unwrap());
    assert!(text.contains("leaderboard"), "{text}");
    assert!(text.contains("test       roc_auc"), "{text}");
    assert!(
        text.contains("registered churn-classifier version 1"),
        "{text}"
    );
    assert!(
        text.contains("promoted to champion: there was no champion"),
        "{text}"
    );
    for file in ["model.json", "metrics.json", "leaderboard.json"] {
        assert!(out_dir.join(file).exists(), "{file}");
    }

    // The same data, seed and budget give the same model, which does not beat the champion.
    let text = ok(&run(train, env.clone()).await.unwrap());
    assert!(
        text.contains("registered churn-classifier version 2"),
        "{text}"
    );
    assert!(text.contains("kept as challenger"), "{text}");

    let predictions = dir.path().join("predictions.csv");
    let text = ok(&run(
        args(&[
            "predict",
            "--model",
            "registry:churn-classifier@champion",
            "--data",
            &seed,
            "--out",
            predictions.to_str().unwrap(),
        ]),
        env.clone(),
    )
    .await
    .unwrap());
    assert!(text.contains("wrote 7043 rows"), "{text}");
    let mut reader = csv::Reader::from_path(&predictions).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "CustomerID");
    assert_eq!(&header[header.len() - 2], "churn_probability");
    assert_eq!(&header[header.len() - 1], "predicted_churn_label");
    let original: Vec<String> = csv::Reader::from_path(&seed)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[0].to_owned())
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 7043);
    // Rows keep their order and gain a probability and a label.
    for (row, id) in rows.iter().zip(&original) {
        assert_eq!(&row[0], id);
        let p: f64 = row[row.len() - 2].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert!(matches!(&row[row.len() - 1], "Yes" | "No"));
    }

    let text = ok(&run(
        args(&[
            "evaluate",
            "--model",
            out_dir.join("model.json").to_str().unwrap(),
            "--data",
            &seed,
        ]),
        env.clone(),
    )
    .await
    .unwrap());
    for metric in [
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "accuracy",
        "precision",
        "recall",
        "f1",
    ] {
        assert!(text.contains(metric), "{metric}: {text}");
    }

    let text = ok(&run(args(&["models", "list"]), env.clone()).await.unwrap());
    assert!(text.contains("churn-classifier"), "{text}");
    assert!(text.contains("champion=1"), "{text}");
    let text = ok(&run(
        args(&[
            "models",
            "promote",
            "churn-classifier",
            "2",
            "--alias",
            "champion",
        ]),
        env.clone(),
    )
    .await
    .unwrap());
    assert!(
        text.contains("churn-classifier@champion -> version 2 (was 1)"),
        "{text}"
    );
    let text = ok(
        &run(args(&["models", "show", "churn-classifier"]), env.clone())
            .await
            .unwrap(),
    );
    assert!(text.contains("@champion -> 2"), "{text}");
    assert!(text.contains("promoted by hand"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn predict_refuses_an_invalid_row_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(seed_data_path()).unwrap();
    let mut lines: Vec<&str> = seed.lines().take(50).collect();
    let broken = lines[10]
        .replacen(",Female,", ",Robot,", 1)
        .replacen(",Male,", ",Robot,", 1);
    lines[10] = &broken;
    let data = dir.path().join("bad.csv");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let model = dir.path().join("model");
    let train = run(
        args(&[
            "train",
            "--data",
            seed_data_path().to_str().unwrap(),
            "--time-budget-secs",
            "2",
            "--out",
            model.to_str().unwrap(),
        ]),
        vec![],
    )
    .await
    .unwrap();
    ok(&train);
    let out = run(
        args(&[
            "predict",
            "--model",
            model.join("model.json").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            dir.path().join("p.csv").to_str().unwrap(),
        ]),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 11") && err.contains("gender"), "{err}");
    assert!(!dir.path().join("p.csv").exists());
}
