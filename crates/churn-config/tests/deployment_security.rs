//! The compose stack's security rules: only the proxy is published beyond 127.0.0.1 (and no data store),
//! every container is confined (no capabilities but those it names, no privilege gain, memory and process
//! limits, read-only roots where it can), and each service logs in as its own database role, never as a
//! superuser, with the bootstrap roles' passwords set only as SCRAM verifiers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_yaml::Value;
use support::{DATA_STORES, compose, environment, repo_file, service, text};

/// The only ports published beyond 127.0.0.1: the proxy's HTTPS, and HTTP for its redirect and ACME.
const PUBLIC_PORTS: [(&str, &str); 2] = [("proxy", "443"), ("proxy", "80")];

/// Services whose root file system may be writable, and why.
const WRITABLE_ROOT: [(&str, &str); 6] = [
    (
        "postgres",
        "the image's entrypoint writes its run directory and initdb state",
    ),
    ("minio", "registry image, writes its config beside the data"),
    ("minio-init", "mc writes its alias config under the home"),
    ("grafana", "registry image, writes plugins and its home"),
    ("metabase", "registry image, unpacks its plugins at start"),
    ("pgadmin", "registry image, writes its config and sessions"),
];

#[test]
fn only_the_proxy_is_published_beyond_127_0_0_1_and_metabase_nowhere() {
    let services = compose();
    let mut problems = Vec::new();
    for (name, definition) in &services {
        let name = text(name);
        let ports = definition
            .get("ports")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for port in ports.iter().map(text) {
            if port.starts_with("127.0.0.1:") {
                continue;
            }
            let host_port = port.split(':').next().unwrap_or_default().to_owned();
            let public = PUBLIC_PORTS
                .iter()
                .any(|(service, p)| *service == name && *p == host_port);
            if DATA_STORES.contains(&name.as_str()) || !public {
                problems.push(format!(
                    "{name} publishes {port} beyond 127.0.0.1 (only {PUBLIC_PORTS:?} may be public)"
                ));
            }
        }
    }
    for store in DATA_STORES {
        assert!(
            service(&services, store).get("ports").is_some(),
            "{store} is expected to be published on 127.0.0.1 for backups and the CLI"
        );
    }
    // First-run setup belongs to whoever reaches it first: Metabase is reached only through the proxy,
    // which routes to it once provisioned.
    assert!(
        service(&services, "metabase").get("ports").is_none(),
        "metabase must publish no port"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_container_drops_its_capabilities_gains_no_privileges_and_has_memory_and_process_limits() {
    let services = compose();
    let mut problems = Vec::new();
    for (name, definition) in &services {
        let name = text(name);
        let list = |key: &str| -> Vec<String> {
            definition
                .get(key)
                .and_then(Value::as_sequence)
                .map(|v| v.iter().map(text).collect())
                .unwrap_or_default()
        };
        if list("cap_drop") != ["ALL"] {
            problems.push(format!("{name}: cap_drop must be [ALL]"));
        }
        let added = list("cap_add");
        let allowed: &[&str] = match name.as_str() {
            "postgres" => &["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
            "proxy" => &["NET_BIND_SERVICE"],
            _ => &[],
        };
        if let Some(extra) = added.iter().find(|c| !allowed.contains(&c.as_str())) {
            problems.push(format!("{name}: cap_add {extra} is not needed"));
        }
        if !list("security_opt").contains(&"no-new-privileges:true".to_owned()) {
            problems.push(format!("{name}: security_opt needs no-new-privileges:true"));
        }
        for key in ["mem_limit", "pids_limit"] {
            if definition.get(key).is_none() {
                problems.push(format!("{name} has no {key}"));
            }
        }
        let read_only = definition.get("read_only").and_then(Value::as_bool) == Some(true);
        if !read_only && !WRITABLE_ROOT.iter().any(|(s, _)| *s == name) {
            problems.push(format!(
                "{name}: read_only must be true (or say in WRITABLE_ROOT why it cannot be)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The user of a `postgres://user:password@host/db` value as compose writes it (the password an
/// interpolation, the user a literal).
fn database_user(url: &str) -> String {
    let rest = url.strip_prefix("postgres://").unwrap_or_default();
    rest.split([':', '@']).next().unwrap_or_default().to_owned()
}

#[test]
fn each_service_logs_in_as_its_own_roles_and_none_as_a_superuser_or_the_root_user() {
    let services = compose();
    let superuser = text(&service(&services, "postgres")["environment"]["POSTGRES_USER"]);
    let mut problems = Vec::new();
    let mismatch = |who: &str, what: &str, found: Option<String>, wanted: &str| {
        (found.as_deref() != Some(wanted))
            .then(|| format!("{who}: {what} is {found:?}, expected {wanted:?}"))
    };
    for name in ["classifier", "synthesizer", "scheduler"] {
        let env = environment(service(&services, name));
        let user = env.get("DATABASE_URL").map(|u| database_user(u));
        problems.extend(mismatch(
            name,
            "the DATABASE_URL user",
            user,
            &format!("churn_{name}"),
        ));
        problems.extend(mismatch(
            name,
            "DATABASE_MIGRATE",
            env.get("DATABASE_MIGRATE").cloned(),
            "false",
        ));
        let key = env.get("AWS_ACCESS_KEY_ID").cloned();
        problems.extend(mismatch(
            name,
            "the MinIO user",
            key,
            &format!("churn-{name}"),
        ));
        let secret = env
            .get("AWS_SECRET_ACCESS_KEY")
            .cloned()
            .unwrap_or_default();
        let wanted = format!("MINIO_{}_SECRET", name.to_uppercase());
        if !secret.contains(&wanted) || secret.contains("MINIO_ROOT") {
            problems.push(format!(
                "{name}: AWS_SECRET_ACCESS_KEY must come from {wanted}"
            ));
        }
    }
    let scheduler = environment(service(&services, "scheduler"));
    let dbt = scheduler.get("DBT_DATABASE_URL").map(|u| database_user(u));
    problems.extend(mismatch(
        "scheduler",
        "the DBT_DATABASE_URL user",
        dbt,
        "churn_dbt",
    ));
    let migrate = environment(service(&services, "migrate"));
    let owner = migrate.get("DATABASE_URL").map(|u| database_user(u));
    problems.extend(mismatch(
        "migrate",
        "the DATABASE_URL user",
        owner,
        "churn_owner",
    ));
    let command: Vec<String> = service(&services, "migrate")["command"]
        .as_sequence()
        .map(|c| c.iter().map(text).collect())
        .unwrap_or_default();
    if command != ["churnctl", "migrate"] {
        problems.push(format!(
            "migrate runs {command:?}, expected churnctl migrate"
        ));
    }
    // Nothing connects as the superuser: no URL names it.
    for (name, definition) in &services {
        let name = text(name);
        for (var, value) in environment(definition.as_mapping().unwrap()) {
            if value.starts_with("postgres://") && database_user(&value) == superuser {
                problems.push(format!(
                    "{name}: {var} logs in as the superuser {superuser}"
                ));
            }
        }
    }
    let init = repo_file("deploy/postgres/init-databases.sh");
    if !init.contains("create role churn_owner login createrole;") {
        problems.push("init-databases.sh must create churn_owner with CREATEROLE".to_owned());
    }
    // The bootstrap roles' passwords reach the server only as SCRAM verifiers psql computes (\password),
    // never as text in SQL, where statement logging or pg_stat_activity would show them.
    for role in ["churn_owner", "grafana", "metabase"] {
        if !init.contains(&format!("set_password {role} ")) {
            problems.push(format!(
                "init-databases.sh must set {role}'s password with set_password"
            ));
        }
    }
    if !init.contains("\\\\password $role") || init.to_lowercase().contains(" password :'") {
        problems.push(
            "init-databases.sh must set passwords with psql's \\password, never `password :'…'`"
                .to_owned(),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
