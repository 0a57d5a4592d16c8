//! What every Spark backend's spec shares: the opening of `build()` (parse, check the `[job]`
//! table, name the field at fault, resolve relative paths) and the checks their `[job]` tables
//! repeat (timeout ranges, a jar needs its main class).
//!
//! ## Guarantees
//! - A spec error names the file and the field ([`SpecError::Value`]), with the job's own
//!   message; relative paths are resolved against the submitter's directory, like a local job's.
use std::{ops::RangeInclusive, path::Path, path::PathBuf, time::Duration};

use serde::de::DeserializeOwned;
use tether_core::{
    spec::{parse_spec, SpecError, SpecFile},
    units::HumanDuration,
};

use super::recovery::SparkRecovery;

/// A `[job]` table that can check itself (what serde cannot), naming the field at fault.
pub trait CheckedJob: DeserializeOwned + Clone {
    /// The job's check error.
    type Invalid: std::fmt::Display;
    /// The first problem, if any.
    fn check(&self) -> Result<(), Self::Invalid>;
    /// The spec field `e` is about (`job.main_class`).
    fn field_of(e: &Self::Invalid) -> &str;
}

/// A parsed and checked spec, and its file's name for later errors.
#[derive(Debug)]
pub struct Opened<J> {
    /// The whole spec file.
    pub spec: SpecFile<J, SparkRecovery>,
    file: String,
}

impl<J: CheckedJob> Opened<J> {
    /// Parses `text` (of `file`) and checks its `[job]` table.
    pub fn open(file: &str, text: &str) -> Result<Self, SpecError> {
        let spec = parse_spec::<J, SparkRecovery>(file, text)?;
        let opened = Opened {
            spec,
            file: file.into(),
        };
        opened
            .spec
            .job
            .check()
            .map_err(|e| opened.err(J::field_of(&e), e.to_string()))?;
        Ok(opened)
    }

    /// A spec error about `field` of this file.
    pub fn err(&self, field: &str, message: String) -> SpecError {
        SpecError::Value {
            file: self.file.clone(),
            field: field.into(),
            message,
        }
    }

    /// The `[recovery]` table, or its defaults.
    pub fn recovery(&self) -> SparkRecovery {
        self.spec.recovery.clone().unwrap_or_default()
    }
}

/// Makes each relative path of `paths` relative to `base` (the submitter's directory).
pub fn resolve_paths<'a>(base: &Path, paths: impl IntoIterator<Item = Option<&'a mut PathBuf>>) {
    for p in paths.into_iter().flatten() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

/// The timeouts a Spark backend accepts for its requests and spark-submit runs.
pub const TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3600);

/// The first of `timeouts` (field, value) outside `range`: its field and the value as given.
pub fn timeout_out_of_range(
    range: &RangeInclusive<Duration>,
    timeouts: &[(&'static str, &HumanDuration)],
) -> Option<(&'static str, String)> {
    timeouts
        .iter()
        .find(|(_, t)| !range.contains(&t.0))
        .map(|(field, t)| (*field, t.to_string()))
}

/// `Some(resource)` when `resource` is a jar and `main_class` names no class.
pub fn jar_without_main_class(resource: &str, main_class: Option<&str>) -> Option<String> {
    let resource = resource.trim();
    let no_class = main_class.is_none_or(|c| c.trim().is_empty());
    (resource.ends_with(".jar") && no_class).then(|| resource.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jars_need_a_main_class_and_timeouts_their_range() {
        assert_eq!(
            jar_without_main_class(" a.jar ", Some(" ")),
            Some("a.jar".into())
        );
        assert_eq!(jar_without_main_class("a.jar", Some("a.B")), None);
        assert_eq!(jar_without_main_class("a.py", None), None);
        let ok = HumanDuration(Duration::from_secs(1));
        let long = HumanDuration(Duration::from_secs(7200));
        assert_eq!(
            timeout_out_of_range(&TIMEOUT_RANGE, &[("a", &ok), ("b", &long)]),
            Some(("b", long.to_string()))
        );
        assert_eq!(timeout_out_of_range(&TIMEOUT_RANGE, &[("a", &ok)]), None);
    }
}
