//! The classifier as deployed: logged in as its own role, churn_classifier, without migrating.

use std::time::Duration;

use crate::{customer_json, seed, spawn_with_champion};

#[tokio::test]
async fn as_its_own_role_without_migrating_the_classifier_serves_the_champion() {
    // The database migrated (by the first instance, as the owner) with a champion registered.
    let app = spawn_with_champion(&[]).await;
    let url = app.db.url_as("churn_classifier");
    let env = churn_service::testing::service_env(
        &app.db,
        &app.s3,
        ::classifier::PORT_VAR,
        &[
            ("DATABASE_URL", url.as_str()),
            ("DATABASE_MIGRATE", "false"),
            ("MODEL_POLL_SECS", "1"),
        ],
    );
    let own = ::classifier::build(::classifier::config_from_env(&env).unwrap())
        .await
        .expect("the classifier starts as churn_classifier");
    let address = format!("http://127.0.0.1:{}", own.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(own.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{address}/ready")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {}",
            ready.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let predicted = client
        .post(format!("{address}/predict"))
        .json(&customer_json(&seed()[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(predicted.status(), 200);
    let fed = client
        .post(format!("{address}/feedback"))
        .json(&serde_json::json!({ "customer_id": "7590-VHVEG", "churned": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(fed.status(), 202);
    let connected: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where usename = 'churn_classifier' and datname = $1",
    )
    .bind(&app.db.name)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        connected > 0,
        "the classifier's pool logs in as churn_classifier"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    // Its stop flushed the log: the role inserted both records, and can read neither back.
    assert_eq!(crate::inference_log::count(&app.db.pool).await, 1);
    let outcomes: i64 = sqlx::query_scalar("select count(*) from serving.outcomes")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(outcomes, 1);
    let own_pool = sqlx::PgPool::connect(&url).await.unwrap();
    for read in [
        "select 1 from serving.inference_log limit 1",
        "select 1 from serving.outcomes limit 1",
    ] {
        let refused = sqlx::query(read).fetch_optional(&own_pool).await;
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("permission denied"),
            "{read}"
        );
    }
    app.shutdown().await;
}
