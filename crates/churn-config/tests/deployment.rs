//! The deployment files agree with the code and keep their rules: every variable a service's configuration
//! reads is documented in sample.env and passed to that service by docker-compose.yml; the compose file
//! gives every long-running service a healthcheck and a restart policy, pins every image, and takes every
//! secret from .env with no fallback; scripts/init-env generates exactly the secrets compose requires.
//! (Its security rules: deployment_security.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

mod support;

use churn_config::{ClassifierConfig, DATABASE_ROLES, Env, SchedulerConfig, SynthesizerConfig};
use serde_yaml::{Mapping, Value};
use support::{DATA_STORES, compose, environment, repo_file, service, text};

/// Variables a configuration reads that neither sample.env nor the compose file should set, and why.
const NOT_SET_ON_PURPOSE: [(&str, &str); 4] = [
    (
        "PREDICT_API_KEYS",
        "optional further callers' keys: a secret, and compose passes secrets only as required \
         variables; a deployment with several callers sets it in an override file",
    ),
    (
        "HOSTNAME",
        "set by the container runtime (each replica's own name)",
    ),
    (
        "AWS_ENDPOINT",
        "older alias of AWS_ENDPOINT_URL, which is set",
    ),
    ("AWS_DEFAULT_REGION", "alias of AWS_REGION, which is set"),
];

/// Services that run to completion once; everything else runs until stopped.
const ONE_SHOTS: [&str; 4] = ["minio-init", "seed-fetch", "metabase-provision", "migrate"];

/// `NAME=value` lines of sample.env, by name.
fn sample_env() -> BTreeMap<String, String> {
    repo_file("sample.env")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Every `${NAME…}` the compose file interpolates, with what follows the name (`:?message`, `:-`, …).
fn interpolations() -> Vec<(String, String)> {
    let text: String = repo_file("docker-compose.yml")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        // `$${` is a literal `${` for the container's shell, not interpolation.
        let escaped = start > 0 && rest.as_bytes()[start - 1] == b'$';
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .expect("an unclosed ${ in docker-compose.yml");
        if !escaped {
            let inner = &after[..end];
            let name_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            found.push((inner[..name_len].to_owned(), inner[name_len..].to_owned()));
        }
        rest = &after[end..];
    }
    found
}

/// The secrets scripts/init-env generates (its `secrets=(…)` list).
fn init_env_secrets() -> BTreeSet<String> {
    let script = repo_file("scripts/init-env");
    let start = script
        .find("secrets=(")
        .expect("scripts/init-env has a secrets=( list")
        + 9;
    let end = start + script[start..].find(')').unwrap();
    script[start..end]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Runs one service's configuration on an [`Env`].
type ReadConfig = fn(&Env);

fn looks_secret(name: &str) -> bool {
    ["PASSWORD", "SECRET", "TOKEN", "_KEY", "PASS"]
        .iter()
        .any(|word| name.contains(word))
        && name != "AWS_ACCESS_KEY_ID"
}

#[test]
fn sample_env_defines_each_variable_once() {
    let mut seen = BTreeSet::new();
    let twice: Vec<String> = repo_file("sample.env")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .filter(|name| !seen.insert(name.clone()))
        .collect();
    assert!(
        twice.is_empty(),
        "defined more than once in sample.env: {twice:?}"
    );
}

#[test]
fn every_variable_a_service_reads_is_in_sample_env_and_passed_to_it_by_compose() {
    let services = compose();
    let sample = sample_env();
    let exempt: BTreeSet<&str> = NOT_SET_ON_PURPOSE.iter().map(|(name, _)| *name).collect();
    let mut problems = Vec::new();
    let configs: [(&str, ReadConfig); 3] = [
        ("classifier", |env| {
            ClassifierConfig::from_env(env).unwrap();
        }),
        ("synthesizer", |env| {
            SynthesizerConfig::from_env(env).unwrap();
        }),
        ("scheduler", |env| {
            SchedulerConfig::from_env(env).unwrap();
        }),
    ];
    for (name, read) in configs {
        let env = Env::recording();
        read(&env);
        let names = env.names_read();
        assert!(names.len() > 20, "{name} read only {names:?}");
        let passed = environment(service(&services, name));
        // Role passwords are read only to set them while migrating, which compose leaves to `migrate`:
        // a service holds its own password in its DATABASE_URL and no other role's.
        let role_passwords: BTreeSet<&str> =
            DATABASE_ROLES.iter().map(|r| r.password_var).collect();
        for var in names.iter().filter(|v| role_passwords.contains(v.as_str())) {
            if !sample.contains_key(var) {
                problems.push(format!("{var} (read by {name}) is not in sample.env"));
            }
            if passed.contains_key(var) {
                problems.push(format!("{var} must not be passed to the {name} service"));
            }
        }
        for var in names
            .iter()
            .filter(|v| !exempt.contains(v.as_str()) && !role_passwords.contains(v.as_str()))
        {
            if !sample.contains_key(var) {
                problems.push(format!("{var} (read by {name}) is not in sample.env"));
            }
            if !passed.contains_key(var) {
                problems.push(format!(
                    "{var} (read by {name}) is not in the {name} service's environment in docker-compose.yml"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_variable_compose_interpolates_is_in_sample_env_and_secrets_have_no_fallback() {
    let sample = sample_env();
    let generated = init_env_secrets();
    let mut problems = Vec::new();
    for (name, modifier) in interpolations() {
        if !sample.contains_key(&name) {
            problems.push(format!(
                "${{{name}}} is used by docker-compose.yml but not in sample.env"
            ));
        }
        if looks_secret(&name) && !modifier.starts_with(":?") {
            problems.push(format!(
                "${{{name}{modifier}}}: a secret must be required with :? and have no fallback"
            ));
        }
        if modifier.starts_with(":?") {
            let has_value = sample.get(&name).is_some_and(|v| !v.is_empty());
            match (generated.contains(&name), has_value) {
                (true, true) => problems.push(format!(
                    "{name} has a value in sample.env: a secret must never be shipped (init-env generates it)"
                )),
                (false, false) => problems.push(format!(
                    "{name} is required by docker-compose.yml, empty in sample.env and not generated by scripts/init-env"
                )),
                _ => {}
            }
        }
    }
    let required: BTreeSet<String> = interpolations()
        .into_iter()
        .filter(|(_, m)| m.starts_with(":?"))
        .map(|(n, _)| n)
        .collect();
    for name in &generated {
        if !required.contains(name) {
            problems.push(format!(
                "scripts/init-env generates {name}, which docker-compose.yml does not require"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_secret_in_compose_is_a_literal() {
    let services = compose();
    let mut problems = Vec::new();
    for (name, definition) in &services {
        for (var, value) in environment(definition.as_mapping().unwrap()) {
            let from_env = value.starts_with("${") && value.contains(":?");
            if looks_secret(&var) && !from_env {
                problems.push(format!("{}: {var}={value} is a literal", text(name)));
            }
            // Secrets inside URLs (DATABASE_URL) must be interpolated too.
            if let Some((_, after_scheme)) = value.split_once("://")
                && let Some((userinfo, _)) = after_scheme.split_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
                && !(password.starts_with("${") && password.contains(":?"))
            {
                problems.push(format!(
                    "{}: {var} has a literal password in its URL",
                    text(name)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_long_running_service_has_a_healthcheck_and_a_restart_policy_and_one_shots_do_not_restart()
{
    let services = compose();
    let mut problems = Vec::new();
    for (name, definition) in &services {
        let name = text(name);
        let restart = definition.get("restart").map(text).unwrap_or_default();
        if ONE_SHOTS.contains(&name.as_str()) {
            if restart != "no" {
                problems.push(format!(
                    "{name} runs once: restart must be \"no\", not {restart:?}"
                ));
            }
            if definition.get("ports").is_some() {
                problems.push(format!("{name} runs once and publishes no port"));
            }
            continue;
        }
        if !["unless-stopped", "always"].contains(&restart.as_str()) {
            problems.push(format!(
                "{name}: restart is {restart:?}; a long-running service needs unless-stopped or always"
            ));
        }
        let test = definition
            .get("healthcheck")
            .and_then(|h| h.get("test"))
            .and_then(Value::as_sequence)
            .map(|t| t.iter().map(text).collect::<Vec<_>>().join(" "));
        match test {
            None => problems.push(format!("{name} has no healthcheck")),
            Some(test) => {
                if ["synthesizer", "classifier", "scheduler"].contains(&name.as_str())
                    && !test.contains("/ready")
                {
                    problems.push(format!("{name}'s healthcheck must ask /ready, not: {test}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn services_start_once_what_they_need_is_healthy_on_one_internal_network() {
    let services = compose();
    let mut problems = Vec::new();
    for (name, definition) in &services {
        let name = text(name);
        let networks: Vec<String> = definition
            .get("networks")
            .and_then(Value::as_sequence)
            .map(|n| n.iter().map(text).collect())
            .unwrap_or_default();
        if networks != ["churn"] {
            problems.push(format!(
                "{name} must be on the one network churn, not {networks:?}"
            ));
        }
        let Some(depends) = definition.get("depends_on").and_then(Value::as_mapping) else {
            continue;
        };
        for (dependency, how) in depends {
            let dependency = text(dependency);
            let condition = how.get("condition").map(text).unwrap_or_default();
            let expected = if ONE_SHOTS.contains(&dependency.as_str()) {
                "service_completed_successfully"
            } else if DATA_STORES.contains(&dependency.as_str())
                || ONE_SHOTS.contains(&name.as_str())
            {
                "service_healthy"
            } else {
                // Between our services the reason for anything weaker is written beside it.
                continue;
            };
            if condition != expected {
                problems.push(format!(
                    "{name} depends on {dependency} with {condition:?}, expected {expected}"
                ));
            }
        }
    }
    let top: Mapping =
        serde_yaml::from_str::<Value>(&repo_file("docker-compose.yml")).unwrap()["networks"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
    assert_eq!(top.len(), 1, "one network: {top:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_image_is_pinned_and_ours_carry_the_workspace_version() {
    let services = compose();
    let cargo = repo_file("Cargo.toml");
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the workspace version in Cargo.toml");
    let mut problems = Vec::new();
    for (name, definition) in &services {
        let name = text(name);
        let image = definition.get("image").map(text).unwrap_or_default();
        let Some((repository, tag)) = image.rsplit_once(':') else {
            problems.push(format!("{name}: image {image:?} has no tag"));
            continue;
        };
        if tag.is_empty() || tag == "latest" || tag.contains('$') || !tag.contains(char::is_numeric)
        {
            problems.push(format!("{name}: image {image} is not pinned to a version"));
        }
        if repository.starts_with("churn-") {
            if tag != version {
                problems.push(format!(
                    "{name}: our image {image} must carry the workspace version {version}"
                ));
            }
            if definition.get("build").is_none() {
                problems.push(format!(
                    "{name}: {image} is built here and needs a build section"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_recording_env_lists_what_a_configuration_reads_and_sets_nothing() {
    let env = Env::recording();
    let config = ClassifierConfig::from_env(&env).unwrap();
    assert_eq!(config.max_batch, 1000, "every variable reads as unset");
    let names = env.names_read();
    for expected in [
        "DATABASE_URL",
        "PREDICT_API_KEY",
        "CLASSIFIER_PORT",
        "AWS_ENDPOINT",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(Env::from_pairs([("A", "1")]).names_read().is_empty());
}
