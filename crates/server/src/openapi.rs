//! The OpenAPI document served at `/api/v1/openapi.json`.
//!
//! Hand-kept (`crates/server/openapi.json`: the paths, parameters, status codes, the API's own
//! objects) and completed when served with the views' schemas from
//! `docs/json-schema/tether-v1.schema.json` (its `$defs` become `components.schemas`), so the
//! views have one schema. Tests check it against the router (every documented route answers,
//! every route is documented) and, with schemathesis, every answer against the document.
use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;

const PATHS: &str = include_str!("../openapi.json");
const VIEWS: &str = include_str!("../../../docs/json-schema/tether-v1.schema.json");

/// The complete document.
pub fn spec() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        // Both files are compiled in and checked by the tests: they parse.
        let mut doc: Value = serde_json::from_str(PATHS).expect("openapi.json parses");
        let views: Value = serde_json::from_str(VIEWS).expect("tether-v1.schema.json parses");
        let text = serde_json::to_string(&views["$defs"]).unwrap_or_default();
        let defs: Value = serde_json::from_str(&text.replace("#/$defs/", "#/components/schemas/"))
            .unwrap_or_default();
        if let (Some(schemas), Some(defs)) = (
            doc["components"]["schemas"].as_object_mut(),
            defs.as_object(),
        ) {
            for (name, schema) in defs {
                schemas
                    .entry(name.clone())
                    .or_insert_with(|| schema.clone());
            }
        }
        doc
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<&'static Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the code serves is documented, and every documented path is served: the
    /// routes are read from the source that declares them.
    #[test]
    fn the_document_lists_exactly_the_routes_of_the_code() {
        let doc = spec();
        let documented: std::collections::BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        let mut served = std::collections::BTreeSet::new();
        for (prefix, source) in [
            ("/api/v1", include_str!("api.rs")),
            ("", include_str!("lib.rs")),
        ] {
            for part in source.split(".route(\"").skip(1) {
                let path = part.split('"').next().unwrap();
                let prefix = if path.starts_with("/runs") || path == "/openapi.json" {
                    "/api/v1"
                } else {
                    prefix
                };
                served.insert(format!("{prefix}{path}"));
            }
        }
        assert_eq!(documented, served);
    }

    #[test]
    fn every_reference_resolves() {
        let doc = spec();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved $ref {name}"
            );
        }
        assert!(
            !text.contains("#/$defs/"),
            "a view schema kept its $defs reference"
        );
    }
}
