//! The one error every job's parameter check gives: the parameter, the value it had and the rule it broke.

/// A job parameter that cannot work; jobs refuse it before their first run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is {value}: it {rule}")]
pub struct InvalidParameter {
    pub name: &'static str,
    pub value: String,
    pub rule: &'static str,
}
