//! Where each Spark backend carries a submission's tag, independent of `spark.app.name` (which
//! the user owns and Spark truncates or rewrites in places): pure functions.
//!
//! - every backend: conf key [`TAG_CONF`] (`spark.tether.tag`), readable back from the driver's
//!   launch command or the application's environment page;
//! - YARN: `spark.yarn.tags`, searchable through the ResourceManager (`applicationTags`). YARN
//!   lower-cases tags; tether's tags are lowercase already ([`tether_core::ids::Tag::derive`]
//!   slugs the key and the store id is lowercase hex), and [`yarn_tags`] lower-cases anyway so a
//!   stored tag compares equal to what YARN returns;
//! - Kubernetes: driver and executor pod labels [`K8S_DRIVER_LABEL`] / [`K8S_EXECUTOR_LABEL`] and
//!   a DNS-1123 driver pod name ([`driver_pod_name`]).
//!
//! ## Guarantees
//! - [`driver_pod_name`] is a DNS-1123 label (≤ 63, `[a-z0-9-]`, alphanumeric at both ends) and
//!   keeps the tag's generation suffix, so two generations never share a pod name.
//! - [`label_value`] is a valid Kubernetes label value (≤ 63, `[A-Za-z0-9._-]`, alphanumeric at
//!   both ends).
use tether_core::ids::Tag;

/// The conf key holding the tag, for every backend.
pub const TAG_CONF: &str = "spark.tether.tag";
/// `normal` or `recovery`, for people reading the Spark UI.
pub const SHAPE_CONF: &str = "spark.tether.shape";
/// YARN application tags.
pub const YARN_TAGS: &str = "spark.yarn.tags";
/// The driver pod's tag label.
pub const K8S_DRIVER_LABEL: &str = "spark.kubernetes.driver.label.tether-tag";
/// The executor pods' tag label.
pub const K8S_EXECUTOR_LABEL: &str = "spark.kubernetes.executor.label.tether-tag";
/// The driver pod's name.
pub const K8S_DRIVER_POD_NAME: &str = "spark.kubernetes.driver.pod.name";

/// Longest DNS-1123 label and Kubernetes label value.
const MAX_LABEL: usize = 63;

/// `spark.yarn.tags`: the user's own tags (if any) followed by the lower-cased tag, once.
pub fn yarn_tags(tag: &Tag, user: Option<&str>) -> String {
    let ours = tag.as_str().to_ascii_lowercase();
    let mut tags: Vec<String> = user
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(&ours))
        .map(str::to_string)
        .collect();
    tags.push(ours);
    tags.join(",")
}

/// The tag as a Kubernetes label value: other characters become `-`, cut to 63 keeping the
/// generation suffix.
pub fn label_value(tag: &Tag) -> String {
    let mapped: String = tag
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    fit(&mapped, MAX_LABEL)
}

/// The driver pod's name: `<tag>-driver` lower-cased, DNS-1123, at most 63 characters (the
/// `-driver` suffix is dropped, then the middle of the tag cut, when it does not fit).
pub fn driver_pod_name(tag: &Tag) -> String {
    let mut base = String::new();
    for c in tag.as_str().chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (base.is_empty() || base.ends_with('-'))) {
            base.push(c);
        }
    }
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "tether" } else { base };
    let with_suffix = format!("{base}-driver");
    if with_suffix.len() <= MAX_LABEL {
        with_suffix
    } else {
        fit(base, MAX_LABEL)
    }
}

/// All tag conf keys of a backend: `(key, value)` pairs to merge over the user's conf.
pub fn tag_conf(backend: TagPlaces, tag: &Tag) -> Vec<(&'static str, String)> {
    let mut keys = vec![(TAG_CONF, tag.to_string())];
    if backend == TagPlaces::Kubernetes {
        keys.push((K8S_DRIVER_LABEL, label_value(tag)));
        keys.push((K8S_EXECUTOR_LABEL, label_value(tag)));
        keys.push((K8S_DRIVER_POD_NAME, driver_pod_name(tag)));
    }
    keys
}

/// Which backend's tag places [`tag_conf`] fills (`spark.yarn.tags` merges with the user's and
/// is set with [`yarn_tags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TagPlaces {
    /// Standalone and Livy: the conf key only.
    ConfOnly,
    /// YARN: the conf key (plus [`yarn_tags`]).
    Yarn,
    /// Kubernetes: the conf key, pod labels and the driver pod name.
    Kubernetes,
}

/// `s` cut to `max` characters (ASCII) keeping its last `-g<generation>` part, alphanumeric at
/// both ends.
fn fit(s: &str, max: usize) -> String {
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if s.len() <= max {
        return s.to_string();
    }
    let tail = match s.rfind('-') {
        Some(i) if s.len() - i < max / 2 => &s[i..],
        _ => "",
    };
    let head = s[..max - tail.len()].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::ids::{Generation, RunKey, StoreId};

    fn long_tag() -> Tag {
        let key = RunKey::new("nightly-etl-for-the-very-long-customer-name").unwrap();
        Tag::derive(
            &StoreId::new("0a1b2c3d").unwrap(),
            &key,
            Generation(1234567),
        )
    }

    fn dns1123(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn tags_are_lowercase_and_yarn_tags_merge() {
        let tag = long_tag();
        assert_eq!(tag.as_str(), tag.as_str().to_ascii_lowercase());
        assert_eq!(yarn_tags(&tag, None), tag.as_str());
        let upper = Tag::from_stored("tether-ETL-g1");
        assert_eq!(
            yarn_tags(&upper, Some("team-a, ,tether-etl-g1")),
            "team-a,tether-etl-g1"
        );
    }

    #[test]
    fn driver_pod_names_are_dns_1123_and_keep_the_generation() {
        let tag = long_tag();
        let name = driver_pod_name(&tag);
        assert!(dns1123(&name), "{name}");
        assert!(name.ends_with("-g1234567"), "{name}");
        assert_eq!(
            driver_pod_name(&Tag::from_stored("tether-k-g2")),
            "tether-k-g2-driver"
        );
        let odd = Tag::from_stored(format!("-{}_X-g9", "A".repeat(80)));
        let name = driver_pod_name(&odd);
        assert!(dns1123(&name) && name.ends_with("-g9"), "{name}");
        let other_gen = driver_pod_name(&Tag::from_stored(format!("-{}_X-g10", "A".repeat(80))));
        assert_ne!(name, other_gen);
    }

    #[test]
    fn labels_and_tag_conf_per_backend() {
        let tag = Tag::from_stored("tether-k/x-g2");
        assert_eq!(label_value(&tag), "tether-k-x-g2");
        assert!(label_value(&long_tag()).len() <= 63);
        let keys: Vec<_> = tag_conf(TagPlaces::ConfOnly, &tag)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, [TAG_CONF]);
        let k8s = tag_conf(TagPlaces::Kubernetes, &tag);
        assert!(
            k8s.contains(&(K8S_DRIVER_LABEL, "tether-k-x-g2".into())),
            "{k8s:?}"
        );
        assert!(
            k8s.contains(&(K8S_DRIVER_POD_NAME, "tether-k-x-g2-driver".into())),
            "{k8s:?}"
        );
        assert_eq!(k8s[0], (TAG_CONF, "tether-k/x-g2".to_string()));
    }
}
