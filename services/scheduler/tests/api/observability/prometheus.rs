//! Debian's Prometheus scraping the running services with the repository's configuration, answering every
//! PromQL expression of the dashboards and alerts.

use super::*;

/// A Prometheus server of our own, stopped (by its process id) when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus with the repository's configuration, its targets pointed at `targets` (job ->
    /// port) and its intervals shortened to a second so a test sees rates and rules quickly.
    fn start(targets: &[(&str, u16)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let mut config = std::fs::read_to_string(repo().join("prometheus/prometheus.yml")).unwrap();
        let mut replace = |from: &str, to: &str| {
            assert_eq!(config.matches(from).count(), 1, "{from} in prometheus.yml");
            config = config.replace(from, to);
        };
        replace("scrape_interval: 15s", "scrape_interval: 1s");
        replace("scrape_timeout: 10s", "scrape_timeout: 1s");
        replace("evaluation_interval: 15s", "evaluation_interval: 1s");
        for (job, port) in targets {
            let compose = match *job {
                "classifier" => "classifier:8000",
                "synthesizer" => "synthesizer:8001",
                "scheduler" => "scheduler:8002",
                other => panic!("unknown job {other}"),
            };
            replace(compose, &format!("127.0.0.1:{port}"));
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        for entry in std::fs::read_dir(repo().join("prometheus/rules")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                dir.path().join("rules").join(path.file_name().unwrap()),
            )
            .unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "prometheus not found ({e}): scripts/test installs Debian's prometheus package"
                )
            });
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The series an instant query returns (an error when Prometheus refuses the query).
    async fn query(&self, client: &reqwest::Client, expr: &str) -> Result<Vec<Value>, String> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", expr)])
                .map_err(|e| e.to_string())?;
        let response = client.get(url).send().await.map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(body.to_string());
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_services_and_every_promql_of_the_dashboards_and_alerts_returns_series()
 {
    let stack = Stack::start().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "manual"),
            ("GENERATE_CUSTOMERS_PER_RUN", "500"),
            ("GENERATE_BATCH_SIZE", "250"),
        ])
        .await;
    let prometheus = Prometheus::start(&[
        ("classifier", stack.classifier_port),
        ("synthesizer", stack.synthesizer_port),
        ("scheduler", scheduler.port),
    ]);
    let client = &stack.client;
    wait_until(Duration::from_secs(60), || async {
        prometheus
            .query(client, "up == 1")
            .await
            .is_ok_and(|series| series.len() == 3)
    })
    .await;

    // Traffic on every service: generate runs call the synthesizer and the classifier and record job
    // metrics; the scrapes themselves are requests to /metrics.
    for _ in 0..2 {
        let run = stack.run_job(&scheduler, "generate").await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }

    let (_, dashboard_promql) = dashboard_queries();
    let (_, alert_promql) = alert_queries();
    let queries: Vec<Query> = dashboard_promql.into_iter().chain(alert_promql).collect();
    assert!(queries.len() >= 15, "{} PromQL queries", queries.len());
    // Rates need two scrapes after the traffic and recording rules an evaluation after that.
    let empty = || async {
        let mut empty = Vec::new();
        for query in &queries {
            match prometheus.query(client, &query.text).await {
                Ok(series) if !series.is_empty() => {}
                Ok(_) => empty.push(format!("{}: no series for {}", query.origin, query.text)),
                Err(e) => empty.push(format!("{}: {} refused: {e}", query.origin, query.text)),
            }
        }
        empty
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut missing = empty().await;
    while !missing.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        missing = empty().await;
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let up = prometheus.query(client, "up").await.unwrap();
    let jobs: BTreeSet<&str> = up
        .iter()
        .map(|s| s["metric"]["job"].as_str().unwrap())
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from(["classifier", "scheduler", "synthesizer"])
    );
    scheduler.stop().await;
}
