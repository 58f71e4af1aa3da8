//! Ingested customers against a real PostgreSQL: new business ids go in by COPY, known ones update, and
//! a concurrent writer adding the same id mid-batch turns the COPY into the upsert without losing a row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use churn_core::{Customer, CustomerId, YesNo};
use churn_store::warehouse::{Upserted, upsert_ingested};
use churn_testkit::TestDb;
use uuid::Uuid;

fn seed() -> Vec<Customer> {
    churn_core::read_customers(&churn_testkit::seed_data_path()).unwrap()
}

fn id() -> CustomerId {
    CustomerId::from_uuid(Uuid::from_bytes(ulid::Ulid::generate().to_bytes()))
}

async fn upsert(db: &TestDb, rows: &[(CustomerId, &Customer, Option<&str>)]) -> Upserted {
    let mut tx = db.pool.begin().await.unwrap();
    let written = upsert_ingested(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
    written
}

#[tokio::test]
async fn new_business_ids_are_inserted_and_known_ones_update_with_labelled_at_set_once() {
    let db = TestDb::new().await;
    let seed = seed();
    let mut first = seed[0].clone();
    first.churn_label = None;
    let second = seed[1].clone();
    let written = upsert(
        &db,
        &[(id(), &first, Some("A-1")), (id(), &second, Some("A-2"))],
    )
    .await;
    assert_eq!(
        written,
        Upserted {
            inserted: 2,
            updated: 0
        }
    );
    let labelled: Vec<(String, bool)> = sqlx::query!(
        r#"select external_id as "external_id!", labelled_at is not null as "labelled!"
           from churn.customers order by external_id"#,
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.external_id, r.labelled))
    .collect();
    assert_eq!(labelled, [("A-1".into(), false), ("A-2".into(), true)]);

    // The outcome arrives for A-1, and a third customer is new: the batch takes the upsert.
    first.churn_label = Some(YesNo::Yes);
    let third = seed[2].clone();
    let written = upsert(
        &db,
        &[(id(), &first, Some("A-1")), (id(), &third, Some("A-3"))],
    )
    .await;
    assert_eq!(
        written,
        Upserted {
            inserted: 1,
            updated: 1
        }
    );
    let rows: Vec<(String, Option<bool>, bool)> = sqlx::query!(
        r#"select external_id as "external_id!", churn_label, labelled_at is not null as "labelled!"
           from churn.customers order by external_id"#,
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.external_id, r.churn_label, r.labelled))
    .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], ("A-1".into(), Some(true), true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_writer_adding_the_same_business_id_turns_the_copy_into_an_update() {
    let db = TestDb::new().await;
    let seed = seed();
    // Another writer inserts B-1 and holds its transaction open: this batch's COPY waits on the unique
    // index and fails once the other commits.
    let mut other = db.pool.begin().await.unwrap();
    let theirs = id();
    upsert_ingested(&mut other, &[(theirs, &seed[0], Some("B-1"))])
        .await
        .unwrap();
    let pool = db.pool.clone();
    let (mine, newer) = (seed[5].clone(), seed[6].clone());
    let batch = tokio::spawn(async move {
        let mut tx = pool.begin().await.unwrap();
        let written = upsert_ingested(
            &mut tx,
            &[(id(), &mine, Some("B-1")), (id(), &newer, Some("B-2"))],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        written
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !batch.is_finished(),
        "the batch should wait on the other writer"
    );
    other.commit().await.unwrap();
    let written = batch.await.unwrap();
    assert_eq!(
        written,
        Upserted {
            inserted: 1,
            updated: 1
        }
    );
    let rows: Vec<(String, Uuid, i16)> = sqlx::query!(
        r#"select external_id as "external_id!", customer_id, tenure_months
           from churn.customers order by external_id"#,
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.external_id, r.customer_id, r.tenure_months))
    .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // B-1 keeps the first writer's id and has this batch's attributes.
    assert_eq!(rows[0].0, "B-1");
    assert_eq!(rows[0].1, theirs.as_uuid());
    assert_eq!(rows[0].2, seed[5].tenure_months as i16);
}
