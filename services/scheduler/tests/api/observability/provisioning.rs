//! The dashboard and alert files' static checks: provisioned datasources only, Grafana macros only, valid rules.

use super::*;

#[test]
fn the_dashboards_and_alert_rules_name_only_provisioned_datasources_and_grafana_macros() {
    let datasources = provisioned_datasources();
    assert_eq!(
        datasources,
        BTreeMap::from([
            (
                WAREHOUSE_UID.to_owned(),
                "grafana-postgresql-datasource".to_owned()
            ),
            (PROMETHEUS_UID.to_owned(), "prometheus".to_owned()),
        ])
    );
    let check_datasource = |origin: &str, ds: &Value| {
        let uid = ds["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{origin}: no datasource uid"));
        assert_eq!(
            datasources.get(uid).map(String::as_str),
            ds["type"].as_str(),
            "{origin}: datasource {ds} is not provisioned with that type"
        );
    };
    let mut uids = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        let text = std::fs::read_to_string(repo().join("grafana/dashboards").join(&file)).unwrap();
        assert!(!text.contains("${DS_"), "{file}: an export placeholder");
        let uid = dashboard["uid"].as_str().unwrap();
        assert!(uids.insert(uid.to_owned()), "{file}: uid {uid} used twice");
        assert!(!dashboard["title"].as_str().unwrap().is_empty());
        assert!(
            dashboard["templating"]["list"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{file}: the queries use no template variables"
        );
        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let id = panel["id"].as_i64().unwrap();
            let origin = format!("{file} panel {id} \"{}\"", panel["title"]);
            assert!(ids.insert(id), "{origin}: id used twice");
            let grid = &panel["gridPos"];
            assert!(
                grid["x"].as_i64().unwrap() + grid["w"].as_i64().unwrap() <= 24,
                "{origin}: wider than the 24-column grid"
            );
            if panel["type"] == "row" {
                continue;
            }
            assert!(
                !panel["description"].as_str().unwrap_or("").is_empty(),
                "{origin}: no description"
            );
            check_datasource(&origin, &panel["datasource"]);
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{origin}: no query");
            for target in targets {
                check_datasource(&origin, &target["datasource"]);
                let query = target["rawSql"].as_str().or(target["expr"].as_str());
                assert!(
                    query.is_some_and(|q| !q.trim().is_empty()),
                    "{origin}: an empty query"
                );
            }
        }
        for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
            if annotation["builtIn"] != 1 {
                check_datasource(&file, &annotation["datasource"]);
                check_datasource(&file, &annotation["target"]["datasource"]);
            }
        }
    }

    // SQL: only Grafana's macros, no template variables (none are defined).
    let (dashboard_sql, dashboard_promql) = dashboard_queries();
    let (alert_sql, alert_promql) = alert_queries();
    for query in dashboard_sql.iter().chain(&alert_sql) {
        let found = macros(&query.text).unwrap_or_else(|e| panic!("{}: {e}", query.origin));
        for m in &found {
            assert!(
                GRAFANA_PG_MACROS.contains(&m.name.as_str()),
                "{}: ${} is not a Grafana macro",
                query.origin,
                m.name
            );
        }
        let without: String = {
            let mut rest = query.text.clone();
            for m in found.iter().rev() {
                rest.replace_range(m.range.clone(), "");
            }
            rest
        };
        assert!(
            !without.contains('$'),
            "{}: a $ that is not a Grafana macro",
            query.origin
        );
    }
    // PromQL: every recorded series a query reads is defined by a recording rule.
    let recorded = recorded_series();
    for query in dashboard_promql.iter().chain(&alert_promql) {
        for word in query
            .text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.contains(':') && !w.starts_with(':'))
        {
            assert!(
                recorded.contains(word),
                "{}: {word} is not a recording rule",
                query.origin
            );
        }
    }

    // Alerting: unique uids, conditions that exist, datasources provisioned, a policy whose receiver exists.
    let rules = alert_rules();
    let mut rule_uids = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let uid = rule["uid"].as_str().unwrap();
            assert!(
                rule_uids.insert(uid.to_owned()),
                "rule uid {uid} used twice"
            );
            let data = rule["data"].as_array().unwrap();
            let refs: BTreeSet<&str> = data.iter().map(|d| d["refId"].as_str().unwrap()).collect();
            assert!(refs.contains(rule["condition"].as_str().unwrap()), "{uid}");
            for d in data {
                let source = d["datasourceUid"].as_str().unwrap();
                assert!(
                    source == "__expr__" || datasources.contains_key(source),
                    "{uid}: datasource {source}"
                );
                if let Some(expression) = d["model"]["expression"].as_str() {
                    assert!(refs.contains(expression), "{uid}: {expression}");
                }
            }
        }
    }
    assert_eq!(rule_uids.len(), 6, "{rule_uids:?}");
    let contacts = read_yaml(&repo().join("grafana/provisioning/alerting/contact-points.yaml"));
    let receivers: BTreeSet<&str> = contacts["contactPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        contacts["contactPoints"][0]["receivers"][0]["settings"]["url"], "${ALERT_WEBHOOK_URL}",
        "the contact point comes from the environment"
    );
    let policies = read_yaml(&repo().join("grafana/provisioning/alerting/policies.yaml"));
    for policy in policies["policies"].as_array().unwrap() {
        assert!(receivers.contains(policy["receiver"].as_str().unwrap()));
    }

    promtool(&["check", "config", "prometheus/prometheus.yml"]);
    promtool(&["check", "rules", "prometheus/rules/churn.yml"]);
}
