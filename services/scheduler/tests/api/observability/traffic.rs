//! Real traffic as rows for the dashboards' and questions' queries: logged calls, outcomes, cohorts.

/// What the classifier and the metrics job write for real traffic (issue 24), as rows: an hour of logged
/// single and batch calls by the champion, outcomes for some of them by request and by customer id, and
/// cohort metrics matured and provisional, whole and sliced, for the real-traffic panels and questions.
pub(super) async fn log_real_traffic(pool: &sqlx::PgPool) {
    let features = serde_json::to_value(churn_core::Customer::example()).unwrap();
    sqlx::query(
        "insert into serving.inference_log (request_id, item, predicted_at, endpoint, source, caller,
             customer_id, features, contract, internet_service, senior_citizen, model_name, model_version,
             arm, probability, label, threshold, latency_us)
         select gen_random_uuid(), 0, now() - make_interval(secs => g * 7),
                case when g % 4 = 0 then 'batch' else 'predict' end,
                case when g % 4 = 0 then 'batch' else 'api' end, 'crm', 'c-' || g, $1,
                'Month-to-month', 'DSL', g % 5 = 0, 'churn-classifier', 1, 'champion',
                (g % 100) / 100.0, (g % 100) / 100.0 >= 0.5, 0.5, 900 + g * 3
         from generate_series(1, 500) as g",
    )
    .bind(&features)
    .execute(pool)
    .await
    .unwrap();
    sqlx::raw_sql(
        "insert into serving.outcomes (customer_id, churned, observed_at, source, caller)
         select 'c-' || g, g % 3 = 0, now(), case when g % 2 = 0 then 'api' else 'ingested' end, 'crm'
         from generate_series(1, 200) as g;
         insert into serving.outcomes (request_id, churned, observed_at, source, caller)
         select request_id, true, now(), 'api', 'crm' from serving.inference_log limit 10;
         insert into monitoring.cohort_metrics (model_name, model_version, source, cohort, cohort_start, slice,
             slice_value, n_predictions, n_labelled, n_positive, label_coverage, roc_auc, pr_auc, log_loss,
             brier, ece, provisional, matures_at)
         values ('churn-classifier', 1, 'api', 'day', current_date - 40, 'all', 'all', 400, 380, 100, 0.95,
                 0.84, 0.66, 0.41, 0.14, 0.04, false, now() - interval '9 days'),
                ('churn-classifier', 1, 'api', 'day', current_date, 'all', 'all', 375, 160, 50, 0.43, 0.8,
                 0.6, 0.44, 0.16, 0.05, true, now() + interval '31 days'),
                ('churn-classifier', 1, 'batch', 'day', current_date, 'all', 'all', 125, 50, 17, 0.4, 0.78,
                 0.57, 0.45, 0.17, 0.06, true, now() + interval '31 days'),
                ('churn-classifier', 1, 'api', 'week', date_trunc('week', now())::date, 'all', 'all', 375, 160,
                 50, 0.43, 0.8, 0.6, 0.44, 0.16, 0.05, true, now() + interval '37 days'),
                ('churn-classifier', 1, 'api', 'week', date_trunc('week', now())::date, 'senior_citizen', 'Yes',
                 75, 30, 12, 0.4, 0.72, 0.61, 0.5, 0.19, 0.07, true, now() + interval '37 days');",
    )
    .execute(pool)
    .await
    .unwrap();
}
