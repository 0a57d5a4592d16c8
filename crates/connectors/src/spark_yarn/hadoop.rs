//! What tether reads from a Hadoop configuration directory: the ResourceManager's web address
//! (`yarn-site.xml`) and whether the cluster wants Kerberos (`core-site.xml`).
//!
//! ## Guarantees
//! - A cluster with `hadoop.security.authentication = kerberos` is refused with a message saying
//!   so (tether does not yet obtain tickets or delegation tokens).
//! - `${name}` references are expanded from the same files (one level deep, as Hadoop's defaults
//!   use them); an address still holding `${` or naming the wildcard host is an error asking for
//!   `rm_url`.
//!
//! ## Caveats
//! - ResourceManager HA (`yarn.resourcemanager.ha.rm-ids`) is not followed: give `rm_url` of
//!   the active RM (a standby redirects, and tether never follows redirects).
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// Why the Hadoop configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HadoopConfError {
    /// A file cannot be read.
    #[error("cannot read {}: {source} (set hadoop_conf_dir to the directory holding yarn-site.xml)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not XML.
    #[error("{} is not a Hadoop configuration file: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
    /// Kerberos is required by the cluster.
    #[error(
        "{} sets hadoop.security.authentication = kerberos: tether's spark-yarn connector does not support \
         Kerberos yet (it would need tickets for spark-submit and SPNEGO for the ResourceManager's REST API); \
         use a cluster with simple authentication",
        path.display()
    )]
    Kerberos {
        /// The file.
        path: PathBuf,
    },
    /// No usable RM address.
    #[error(
        "{} gives no usable ResourceManager web address ({found}): set rm_url in [job], e.g. \
         \"http://resourcemanager:8088\"",
        path.display()
    )]
    NoRmAddress {
        /// `yarn-site.xml`.
        path: PathBuf,
        /// What was found.
        found: String,
    },
}

/// The properties of one `*-site.xml` (missing file: none).
pub fn read_site(path: &Path) -> Result<HashMap<String, String>, HadoopConfError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(source) => {
            return Err(HadoopConfError::Read {
                path: path.into(),
                source,
            })
        }
    };
    parse_site(&text).map_err(|message| HadoopConfError::Parse {
        path: path.into(),
        message,
    })
}

/// `<property><name>k</name><value>v</value></property>` pairs of a Hadoop site file.
pub fn parse_site(text: &str) -> Result<HashMap<String, String>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let child_text = |n: roxmltree::Node<'_, '_>, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .map(|c| c.text().unwrap_or_default().trim().to_string())
    };
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .filter_map(|p| Some((child_text(p, "name")?, child_text(p, "value")?)))
        .collect())
}

/// Refuses a Kerberos cluster (`core-site.xml` of `dir`).
pub fn check_auth(dir: &Path) -> Result<(), HadoopConfError> {
    let path = dir.join("core-site.xml");
    let core = read_site(&path)?;
    match core.get("hadoop.security.authentication") {
        Some(a) if a.trim().eq_ignore_ascii_case("kerberos") => {
            Err(HadoopConfError::Kerberos { path })
        }
        _ => Ok(()),
    }
}

/// The RM's web/REST URL from `yarn-site.xml` of `dir`.
pub fn rm_url(dir: &Path) -> Result<String, HadoopConfError> {
    let path = dir.join("yarn-site.xml");
    let site = read_site(&path)?;
    let https = site
        .get("yarn.http.policy")
        .is_some_and(|p| p.trim() == "HTTPS_ONLY");
    let (key, scheme) = if https {
        ("yarn.resourcemanager.webapp.https.address", "https")
    } else {
        ("yarn.resourcemanager.webapp.address", "http")
    };
    let expand = |v: &str| -> String {
        let mut out = v.to_string();
        for (k, val) in &site {
            out = out.replace(&format!("${{{k}}}"), val);
        }
        out
    };
    let address = match site.get(key) {
        Some(a) => expand(a),
        None => match site.get("yarn.resourcemanager.hostname") {
            Some(h) => format!("{}:{}", h.trim(), if https { 8090 } else { 8088 }),
            None => {
                return Err(HadoopConfError::NoRmAddress {
                    path,
                    found: format!("neither {key} nor yarn.resourcemanager.hostname is set"),
                })
            }
        },
    };
    let address = address.trim();
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    if address.contains("${") || host.is_empty() || host == "0.0.0.0" {
        return Err(HadoopConfError::NoRmAddress {
            path,
            found: format!("{key} = {address}"),
        });
    }
    Ok(format!("{scheme}://{address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(yarn: &str, core: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let wrap = |props: &str| {
            format!("<?xml version=\"1.0\"?>\n<configuration>{props}</configuration>\n")
        };
        std::fs::write(d.path().join("yarn-site.xml"), wrap(yarn)).unwrap();
        std::fs::write(d.path().join("core-site.xml"), wrap(core)).unwrap();
        d
    }

    fn prop(k: &str, v: &str) -> String {
        format!("<property><name>{k}</name><value>{v}</value><source>x</source></property>\n")
    }

    #[test]
    fn rm_address_comes_from_yarn_site_with_references_expanded() {
        let d = dir_with(&prop("yarn.resourcemanager.webapp.address", "rm1:8088"), "");
        assert_eq!(rm_url(d.path()).unwrap(), "http://rm1:8088");
        let refd = prop("yarn.resourcemanager.hostname", "rm2")
            + &prop(
                "yarn.resourcemanager.webapp.address",
                "${yarn.resourcemanager.hostname}:8088",
            );
        let d = dir_with(&refd, "");
        assert_eq!(rm_url(d.path()).unwrap(), "http://rm2:8088");
        let d = dir_with(
            &prop("yarn.resourcemanager.webapp.address", "0.0.0.0:8088"),
            "",
        );
        let e = rm_url(d.path()).unwrap_err().to_string();
        assert!(e.contains("set rm_url"), "{e}");
        let d = dir_with("", "");
        assert!(rm_url(d.path()).is_err());
    }

    #[test]
    fn kerberos_is_refused_clearly() {
        let d = dir_with("", &prop("hadoop.security.authentication", "kerberos"));
        let e = check_auth(d.path()).unwrap_err().to_string();
        assert!(e.contains("does not support Kerberos"), "{e}");
        let d = dir_with("", &prop("hadoop.security.authentication", "simple"));
        assert!(check_auth(d.path()).is_ok());
    }
}
