//! The MLflow searches of runs, model versions and registered models, filtered, ordered and paged in SQL,
//! against a real PostgreSQL: tables of filters and orderings, each with the rows MLflow's semantics
//! select, in order (a missing field satisfies only `!=` and sorts last, a metric is its value at the
//! largest step, derived tags are tags, text compares byte-wise, LIKE has no escape character, times
//! are whole milliseconds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_core::VersionNumber;
use churn_registry::mlflow::{self, filter::SearchRequest};
use churn_registry::{Error, Lineage, NewVersion, Registry};
use churn_testkit::{TestDb, TestS3};
use serde_json::json;
use uuid::Uuid;

/// The runs' and versions' times are milliseconds after this one.
const BASE: i64 = 1_700_000_000_000;

/// The runs by letter. Their ids sort as A, C, B, D, E; B, C and D start in one millisecond.
const RUNS: [(&str, &str); 5] = [
    ("A", "10000000-0000-4000-8000-00000000000a"),
    ("B", "30000000-0000-4000-8000-00000000000b"),
    ("C", "20000000-0000-4000-8000-00000000000c"),
    ("D", "40000000-0000-4000-8000-00000000000d"),
    ("E", "50000000-0000-4000-8000-00000000000e"),
];

fn id(letter: &str) -> &'static str {
    RUNS.iter().find(|(l, _)| *l == letter).unwrap().1
}

fn letter(run_id: &str) -> &'static str {
    RUNS.iter().find(|(_, id)| *id == run_id).unwrap().0
}

struct RunSpec {
    letter: &'static str,
    experiment: &'static str,
    status: &'static str,
    started_us: i64,
    ended_ms: Option<i64>,
    code_version: &'static str,
    parent: Option<&'static str>,
    training_rows: Option<i64>,
    training_data_sha256: Option<String>,
    params: &'static [(&'static str, &'static str)],
    tags: &'static [(&'static str, &'static str)],
    metrics: &'static [(&'static str, i64, f64)],
}

/// A run of `experiment` started `started_us` after the epoch, with no lineage, params, tags or metrics.
fn bare(
    letter: &'static str,
    experiment: &'static str,
    status: &'static str,
    started_us: i64,
) -> RunSpec {
    RunSpec {
        letter,
        experiment,
        status,
        started_us,
        ended_ms: None,
        code_version: "v1",
        parent: None,
        training_rows: None,
        training_data_sha256: None,
        params: &[],
        tags: &[],
        metrics: &[],
    }
}

fn specs() -> Vec<RunSpec> {
    let us = |offset_ms: i64| (BASE + offset_ms) * 1000;
    vec![
        RunSpec {
            ended_ms: Some(BASE + 5000),
            training_rows: Some(100),
            params: &[("lr", "0.1"), ("depth", "3"), ("path", "a\\xyz")],
            // A stored tag hides the derived tag of its key.
            tags: &[("team", "Churn"), ("mlflow.runName", "custom")],
            metrics: &[("auc", 0, 0.5), ("auc", 1, 0.9)],
            ..bare("A", "alpha", "finished", us(3000))
        },
        RunSpec {
            code_version: "v2",
            parent: Some("A"),
            params: &[("lr", "0.01")],
            tags: &[("team", "churn")],
            // Its auc is 0.7, the value at its largest step, not the largest value.
            metrics: &[("auc", 0, 0.95), ("auc", 2, 0.7), ("loss", 0, 0.3)],
            ..bare("B", "alpha", "running", us(2000))
        },
        RunSpec {
            ended_ms: Some(BASE + 2500),
            training_data_sha256: Some("b".repeat(64)),
            ..bare("C", "beta", "failed", us(2000))
        },
        // 400 µs later than B and C: the same millisecond.
        RunSpec {
            ended_ms: Some(BASE + 9000),
            code_version: "v10",
            params: &[("lr", "0.1")],
            tags: &[("churn.code_version", "stored")],
            metrics: &[("auc", 5, 0.8)],
            ..bare("D", "beta", "finished", us(2000) + 400)
        },
        RunSpec {
            ended_ms: Some(BASE + 1000),
            params: &[("note", "héllo"), ("word", "ΟΔΟΣ")],
            metrics: &[("loss", 0, 0.1)],
            ..bare("E", "alpha", "killed", us(1000))
        },
    ]
}

async fn insert_run(db: &TestDb, run: &RunSpec) {
    let run_id = Uuid::parse_str(id(run.letter)).unwrap();
    sqlx::query(
        "insert into registry.runs (run_id, experiment, status, started_at, ended_at, parent_run_id,
             training_rows, training_data_sha256, code_version)
         values ($1, $2, $3, timestamptz 'epoch' + $4 * interval '1 microsecond',
                 timestamptz 'epoch' + $5 * interval '1 millisecond', $6, $7, $8, $9)",
    )
    .bind(run_id)
    .bind(run.experiment)
    .bind(run.status)
    .bind(run.started_us)
    .bind(run.ended_ms)
    .bind(run.parent.map(|p| Uuid::parse_str(id(p)).unwrap()))
    .bind(run.training_rows)
    .bind(&run.training_data_sha256)
    .bind(run.code_version)
    .execute(&db.pool)
    .await
    .unwrap();
    for (statement, pairs) in [
        (
            "insert into registry.run_params (run_id, key, value) values ($1, $2, $3)",
            run.params,
        ),
        (
            "insert into registry.run_tags (run_id, key, value) values ($1, $2, $3)",
            run.tags,
        ),
    ] {
        for (key, value) in pairs {
            sqlx::query(statement)
                .bind(run_id)
                .bind(key)
                .bind(value)
                .execute(&db.pool)
                .await
                .unwrap();
        }
    }
    for (key, step, value) in run.metrics {
        sqlx::query(
            "insert into registry.run_metrics (run_id, key, step, value) values ($1, $2, $3, $4)",
        )
        .bind(run_id)
        .bind(key)
        .bind(step)
        .bind(value)
        .execute(&db.pool)
        .await
        .unwrap();
    }
}

fn new_version(name: &str, artifact: &[u8], run: Option<&str>, parent: Option<i32>) -> NewVersion {
    NewVersion {
        model_name: name.to_owned(),
        flavor: "test/bytes".to_owned(),
        artifact: artifact.to_vec(),
        description: String::new(),
        metrics: json!({}),
        lineage: Lineage {
            training_rows: None,
            training_data_sha256: None,
            code_version: "test".to_owned(),
            parent_version: parent.map(|n| VersionNumber::new(n).unwrap()),
            extra: Default::default(),
        },
        run_id: run.map(|r| Uuid::parse_str(id(r)).unwrap().into()),
        profile: None,
    }
}

/// Runs A to E; churn-classifier versions 1 (run A), 2 (run B) and 3 (no run, parent 2) with the
/// champion on 1; synthesizer version 1 (run C).
async fn fixture() -> (Registry, TestDb, TestS3) {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let registry = Registry::new(db.pool.clone(), s3.open());
    for run in specs() {
        insert_run(&db, &run).await;
    }
    for (name, artifact, run, parent) in [
        ("churn-classifier", &b"a"[..], Some("A"), None),
        ("churn-classifier", &b"bb"[..], Some("B"), None),
        ("churn-classifier", &b"ccc"[..], None, Some(2)),
        ("synthesizer", &b"dddd"[..], Some("C"), None),
    ] {
        registry
            .register(new_version(name, artifact, run, parent))
            .await
            .unwrap();
    }
    registry
        .set_alias(
            "churn-classifier",
            "champion",
            VersionNumber::new(1).unwrap(),
        )
        .await
        .unwrap();
    for statement in [
        "update registry.model_versions set created_at = timestamptz 'epoch'
             + ($1 + case when model_name = 'synthesizer' then 2000 else version * 1000 end)
                 * interval '1 millisecond'",
        "update registry.aliases set updated_at = timestamptz 'epoch' + ($1 + 10000) * interval '1 millisecond'",
        "update registry.registered_models set
             created_at = timestamptz 'epoch' + ($1 + case name when 'synthesizer' then 200 else 100 end)
                 * interval '1 millisecond',
             updated_at = timestamptz 'epoch' + ($1 + case name when 'synthesizer' then 20000 else 500 end)
                 * interval '1 millisecond'",
    ] {
        sqlx::query(statement)
            .bind(BASE)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    (registry, db, s3)
}

fn request(filter: &str, order_by: &[&str]) -> SearchRequest {
    SearchRequest {
        filter: (!filter.is_empty()).then(|| filter.to_owned()),
        order_by: order_by.iter().map(|o| (*o).to_owned()).collect(),
        ..SearchRequest::default()
    }
}

async fn runs(registry: &Registry, experiments: &[String], request: &SearchRequest) -> String {
    let page = mlflow::search_runs(registry, experiments, request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
    assert_eq!(page.next_page_token, None, "{request:?}");
    let letters: Vec<&str> = page.items.iter().map(|r| letter(&r.info.run_id)).collect();
    letters.join(" ")
}

#[tokio::test]
async fn run_searches_select_and_order_as_mlflow_s_semantics_say() {
    let (registry, _db, _s3) = fixture().await;
    let (a, b) = (id("A"), id("B"));
    let at = |offset: i64| BASE + offset;
    let filters: Vec<(String, &str)> = vec![
        (String::new(), "A C B D E"),
        ("attributes.status = 'FINISHED'".into(), "A D"),
        ("attributes.status != 'RUNNING'".into(), "A C D E"),
        ("attributes.status = 'finished'".into(), ""),
        ("attributes.status ILIKE 'fin%'".into(), "A D"),
        (format!("attributes.end_time > {}", at(2000)), "A C D"),
        (format!("attributes.end_time != {}", at(5000)), "C B D E"),
        (format!("attributes.start_time = {}", at(2000)), "C B D"),
        (
            format!(
                "attributes.start_time >= {} and attributes.start_time < {}",
                at(2000),
                at(3000)
            ),
            "C B D",
        ),
        (format!("attributes.start_time <= {}.5", at(1000)), "E"),
        ("metrics.auc > 0.75".into(), "A D"),
        ("metrics.auc <= 0.7".into(), "B"),
        ("metrics.auc != 0.9".into(), "C B D E"),
        ("metrics.loss = 0.3".into(), "B"),
        ("metrics.auc >= -1 and metrics.loss < 1".into(), "B"),
        ("params.lr = '0.1'".into(), "A D"),
        ("params.lr LIKE '0.0%'".into(), "B"),
        ("params.lr != '0.1'".into(), "C B E"),
        ("params.depth = \"3\"".into(), "A"),
        // No escape character: the backslash is itself, `_` any one character.
        ("params.path LIKE 'a\\_%'".into(), "A"),
        ("params.note LIKE 'h_llo'".into(), "E"),
        ("params.word LIKE 'οδος'".into(), ""),
        // Lower-cased as Rust does: the final capital sigma is a final small sigma.
        ("params.word ILIKE 'οδος'".into(), "E"),
        ("params.word ILIKE 'ΟΔΟΣ'".into(), "E"),
        ("tags.team = 'churn'".into(), "B"),
        ("tags.team ILIKE 'CHURN'".into(), "A B"),
        ("tags.team LIKE 'C%'".into(), "A"),
        ("tags.`mlflow.runName` = 'custom'".into(), "A"),
        ("tags.`mlflow.runName` LIKE 'alpha-%'".into(), "B E"),
        ("tags.`mlflow.runName` = 'beta-20000000'".into(), "C"),
        ("tags.`churn.code_version` = 'v1'".into(), "A C E"),
        ("tags.`churn.code_version` = 'stored'".into(), "D"),
        ("tags.`churn.training_rows` = '100'".into(), "A"),
        ("tags.`churn.training_rows` != '100'".into(), "C B D E"),
        (format!("tags.`mlflow.parentRunId` = '{a}'"), "B"),
        ("tags.`churn.training_data_sha256` LIKE 'b%'".into(), "C"),
        (format!("attributes.run_id = '{b}'"), "B"),
        ("attributes.run_name = 'beta-40000000'".into(), "D"),
        ("attributes.run_name LIKE '%-_0000000'".into(), "A C B D E"),
        ("tags.nothing != 'x'".into(), "A C B D E"),
        ("tags.nothing = 'x'".into(), ""),
        // NUL is in no stored text: never equal, never like, never a key.
        ("params.lr = 'a\0b'".into(), ""),
        ("params.lr != 'a\0b'".into(), "A C B D E"),
        ("params.lr LIKE '%\0'".into(), ""),
        ("tags.`a\0` != 'x'".into(), "A C B D E"),
        ("tags.`a\0` = 'x'".into(), ""),
        (
            "tag.team = 'churn' AND param.lr = '0.01' and metric.auc < 1".into(),
            "B",
        ),
    ];
    for (filter, expected) in &filters {
        let got = runs(&registry, &[], &request(filter, &[])).await;
        assert_eq!(&got, expected, "filter {filter:?}");
    }

    let orders: [(&str, &[&str], &str); 13] = [
        ("", &["metrics.auc DESC"], "A D B C E"),
        ("", &["metrics.auc"], "B D A C E"),
        ("", &["params.lr"], "B A D C E"),
        // Byte order: lower case after upper case.
        ("", &["tags.team DESC"], "B A C D E"),
        ("", &["attributes.end_time"], "E C A D B"),
        ("", &["end_time DESC"], "D A C E B"),
        // B, C and D tie on the millisecond and fall through to the id.
        ("", &["start_time"], "E C B D A"),
        ("", &["run_name DESC"], "D C E B A"),
        ("", &["status", "metrics.auc DESC"], "C A D E B"),
        ("", &["tags.`mlflow.runName`"], "B E C D A"),
        ("", &["run_id DESC"], "E D B C A"),
        ("", &["tags.nothing"], "A C B D E"),
        ("params.lr = '0.1'", &["metrics.auc"], "D A"),
    ];
    for (filter, order, expected) in orders {
        let got = runs(&registry, &[], &request(filter, order)).await;
        assert_eq!(got, expected, "filter {filter:?} order {order:?}");
    }

    // Experiments by id.
    let alpha = mlflow::experiment_id("alpha");
    let beta = mlflow::experiment_id("beta");
    let everything = request("", &[]);
    assert_eq!(
        runs(&registry, std::slice::from_ref(&beta), &everything).await,
        "C D"
    );
    assert_eq!(
        runs(&registry, &[alpha, "123".into()], &everything).await,
        "A B E"
    );
    assert_eq!(runs(&registry, &["123".into()], &everything).await, "");
    assert_eq!(
        runs(&registry, &[beta], &request("metrics.auc > 0", &[])).await,
        "D"
    );

    // Pages: a token only when more rows follow; the page's runs are whole, as `runs/get` shows them.
    let page = |filter: &'static str, token: Option<&str>| {
        let paged = SearchRequest {
            max_results: Some(2),
            page_token: token.map(str::to_owned),
            ..request(filter, &[])
        };
        let registry = registry.clone();
        async move {
            let page = mlflow::search_runs(&registry, &[], &paged).await.unwrap();
            for run in &page.items {
                let alone = mlflow::get_run(&registry, &run.info.run_id).await.unwrap();
                assert_eq!(run, &alone);
            }
            let letters: Vec<&str> = page.items.iter().map(|r| letter(&r.info.run_id)).collect();
            (letters.join(" "), page.next_page_token)
        }
    };
    let pages = [
        page("", None).await,
        page("", Some("2")).await,
        page("", Some("4")).await,
        page("", Some("10")).await,
        page("attributes.status != 'RUNNING'", Some("2")).await,
    ];
    let token = |t: &str| Some(t.to_owned());
    assert_eq!(
        pages,
        [
            ("A C".to_owned(), token("2")),
            ("B D".to_owned(), token("4")),
            ("E".to_owned(), None),
            (String::new(), None),
            // Exactly the last rows: no token.
            ("D E".to_owned(), None),
        ]
    );

    // The derived fields are the ones the run shows.
    let a_run = mlflow::get_run(&registry, a).await.unwrap();
    assert_eq!(a_run.info.run_name, "alpha-10000000");
    assert_eq!(a_run.info.start_time, at(3000));
    assert_eq!(a_run.info.status, "FINISHED");

    for bad in [
        SearchRequest {
            max_results: Some(0),
            ..request("", &[])
        },
        request("metrics.auc = 'x'", &[]),
        request("", &["nonsense"]),
        SearchRequest {
            page_token: Some("x".into()),
            ..request("", &[])
        },
    ] {
        let err = mlflow::search_runs(&registry, &[], &bad).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { .. }),
            "{bad:?}: {err}"
        );
    }
}

async fn versions(registry: &Registry, request: &SearchRequest) -> String {
    let page = mlflow::search_model_versions(registry, request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
    assert_eq!(page.next_page_token, None, "{request:?}");
    let names: Vec<String> = page.items.iter().map(short).collect();
    names.join(" ")
}

fn short(v: &mlflow::ModelVersion) -> String {
    let prefix = if v.name == "synthesizer" { "s" } else { "cc" };
    format!("{prefix}{}", v.version)
}

#[tokio::test]
async fn model_version_searches_select_and_order_as_mlflow_s_semantics_say() {
    let (registry, _db, _s3) = fixture().await;
    let (a, b, c) = (id("A"), id("B"), id("C"));
    let cases: [(String, &[&str], &str); 20] = [
        (String::new(), &[], "cc3 cc2 cc1 s1"),
        ("name = 'synthesizer'".into(), &[], "s1"),
        ("name LIKE 'churn%'".into(), &[], "cc3 cc2 cc1"),
        ("name ILIKE 'SYN%'".into(), &[], "s1"),
        (format!("run_id = '{a}'"), &[], "cc1"),
        (format!("run_id IN ('{a}', \"{c}\")"), &[], "cc1 s1"),
        ("run_id IN ('nope')".into(), &[], ""),
        // Version 3 has no run: missing satisfies `!=`.
        (format!("run_id != '{a}'"), &[], "cc3 cc2 s1"),
        ("tags.`churn.parent_version` = '2'".into(), &[], "cc3"),
        (
            "tags.`churn.parent_version` != '2'".into(),
            &[],
            "cc2 cc1 s1",
        ),
        (
            "tags.`churn.flavor` = 'test/bytes'".into(),
            &[],
            "cc3 cc2 cc1 s1",
        ),
        ("tags.`churn.artifact_size` = '2'".into(), &[], "cc2"),
        (
            "tags.`mlflow.prompt.is_prompt` != 'true'".into(),
            &[],
            "cc3 cc2 cc1 s1",
        ),
        ("tags.`mlflow.prompt.is_prompt` = 'true'".into(), &[], ""),
        (
            format!("name = 'churn-classifier' and run_id != '{b}'"),
            &[],
            "cc3 cc1",
        ),
        (String::new(), &["version_number"], "cc1 s1 cc2 cc3"),
        // Version 1's champion alias moved last.
        (
            String::new(),
            &["last_updated_timestamp DESC"],
            "cc1 cc3 cc2 s1",
        ),
        (String::new(), &["timestamp"], "cc2 s1 cc3 cc1"),
        (String::new(), &["creation_timestamp"], "cc1 cc2 s1 cc3"),
        (String::new(), &["name DESC"], "s1 cc3 cc2 cc1"),
    ];
    for (filter, order, expected) in &cases {
        let got = versions(&registry, &request(filter, order)).await;
        assert_eq!(&got, expected, "filter {filter:?} order {order:?}");
    }

    let first = mlflow::search_model_versions(
        &registry,
        &SearchRequest {
            max_results: Some(3),
            ..request("", &[])
        },
    )
    .await
    .unwrap();
    let names: Vec<String> = first.items.iter().map(short).collect();
    assert_eq!(
        (names, first.next_page_token.as_deref()),
        (
            vec!["cc3".to_owned(), "cc2".to_owned(), "cc1".to_owned()],
            Some("3")
        )
    );
    let one = &first.items[2];
    assert_eq!(one.aliases, ["champion"]);
    assert_eq!(one.last_updated_timestamp, BASE + 10_000);
    assert_eq!(one.creation_timestamp, BASE + 1000);
    assert_eq!(one.run_id.as_deref(), Some(a));
    assert_eq!(
        one,
        &mlflow::get_model_version(&registry, "churn-classifier", "1")
            .await
            .unwrap()
    );
    let second = mlflow::search_model_versions(
        &registry,
        &SearchRequest {
            max_results: Some(3),
            page_token: first.next_page_token,
            ..request("", &[])
        },
    )
    .await
    .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next_page_token, None);
}

#[tokio::test]
async fn registered_model_searches_select_and_order_as_mlflow_s_semantics_say() {
    let (registry, _db, _s3) = fixture().await;
    let cases: [(&str, &[&str], &[&str]); 8] = [
        ("", &[], &["churn-classifier", "synthesizer"]),
        ("name = 'synthesizer'", &[], &["synthesizer"]),
        ("name LIKE '%e%'", &[], &["churn-classifier", "synthesizer"]),
        ("tags.x != 'y'", &[], &["churn-classifier", "synthesizer"]),
        ("tags.x = 'y'", &[], &[]),
        (
            "",
            &["last_updated_timestamp DESC"],
            &["synthesizer", "churn-classifier"],
        ),
        (
            "",
            &["creation_timestamp DESC"],
            &["synthesizer", "churn-classifier"],
        ),
        ("", &["name DESC"], &["synthesizer", "churn-classifier"]),
    ];
    for (filter, order, expected) in cases {
        let page = mlflow::search_registered_models(&registry, &request(filter, order))
            .await
            .unwrap();
        let names: Vec<&str> = page.items.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, expected, "filter {filter:?} order {order:?}");
        assert_eq!(page.next_page_token, None);
    }
    let first = mlflow::search_registered_models(
        &registry,
        &SearchRequest {
            max_results: Some(1),
            ..request("", &[])
        },
    )
    .await
    .unwrap();
    assert_eq!(first.next_page_token.as_deref(), Some("1"));
    let model = &first.items[0];
    assert_eq!(
        model,
        &mlflow::get_registered_model(&registry, "churn-classifier")
            .await
            .unwrap()
    );
    assert_eq!(model.latest_versions.len(), 1);
    assert_eq!(model.latest_versions[0].version, "3");
    assert_eq!(model.aliases[0].version, "1");
    assert_eq!(model.last_updated_timestamp, BASE + 10_000);
}
