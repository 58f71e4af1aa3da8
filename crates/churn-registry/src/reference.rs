//! Model references: `registry:NAME@ALIAS`, `registry:NAME/VERSION`, or a local path.

use std::path::PathBuf;
use std::str::FromStr;

use churn_core::VersionNumber;

use crate::Error;

/// Which version of a registered model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Alias(String),
    Version(VersionNumber),
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Registry { name: String, selector: Selector },
    Path(PathBuf),
}

impl FromStr for ModelRef {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self, Error> {
        let fail = |reason: &str| Error::InvalidReference {
            reference: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = raw
            .strip_prefix("registry:")
            .or_else(|| raw.strip_prefix("models:/"));
        let Some(rest) = rest else {
            if raw.trim().is_empty() {
                return Err(fail(
                    "empty; expected registry:NAME@ALIAS, registry:NAME/VERSION or a file path",
                ));
            }
            return Ok(ModelRef::Path(PathBuf::from(raw)));
        };
        let (name, selector) = if let Some((name, alias)) = rest.split_once('@') {
            crate::registry::check_alias(alias).map_err(|e| fail(&e.to_string()))?;
            (name, Selector::Alias(alias.to_owned()))
        } else if let Some((name, version)) = rest.rsplit_once('/') {
            let v: VersionNumber = version
                .parse()
                .map_err(|_| fail("the version must be a positive whole number"))?;
            (name, Selector::Version(v))
        } else {
            return Err(fail("expected NAME@ALIAS or NAME/VERSION after the prefix"));
        };
        crate::registry::check_model_name(name).map_err(|e| fail(&e.to_string()))?;
        Ok(ModelRef::Registry {
            name: name.to_owned(),
            selector,
        })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelRef::Registry {
                name,
                selector: Selector::Alias(a),
            } => write!(f, "registry:{name}@{a}"),
            ModelRef::Registry {
                name,
                selector: Selector::Version(v),
            } => write!(f, "registry:{name}/{v}"),
            ModelRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_every_accepted_form() {
        assert_eq!(
            "registry:churn-classifier@champion"
                .parse::<ModelRef>()
                .ok(),
            Some(ModelRef::Registry {
                name: "churn-classifier".into(),
                selector: Selector::Alias("champion".into())
            })
        );
        assert_eq!(
            "models:/churn-classifier/3".parse::<ModelRef>().ok(),
            Some(ModelRef::Registry {
                name: "churn-classifier".into(),
                selector: Selector::Version(VersionNumber::new(3).expect("3 is a version"))
            })
        );
        assert_eq!(
            "./model.json".parse::<ModelRef>().ok(),
            Some(ModelRef::Path("./model.json".into()))
        );
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "registry:churn",
            "registry:churn/0",
            "registry:churn/x",
            "registry:Bad Name@champion",
            "registry:churn@",
            "",
        ] {
            let err = bad.parse::<ModelRef>().expect_err(bad).to_string();
            assert!(err.contains("invalid model reference"), "{err}");
        }
    }
}
