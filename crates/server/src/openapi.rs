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
