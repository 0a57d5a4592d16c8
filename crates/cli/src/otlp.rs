//! OpenTelemetry export of the fleet's `tracing` spans (OTLP over HTTP/protobuf), behind the
//! `otlp` Cargo feature (on by default) and off at run time unless `--otlp-endpoint` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector.
//!
//! ## Guarantees
//! - Spans carry what the log carries (keys, ids, epochs, decisions): never a spec's text or a
//!   token (see `tether_fleet::trace`).
//! - Spans are exported in batches from a thread of their own; [`Exporting`] flushes what is
//!   left when dropped at the end of `main`.
//!
//! ## Caveats
//! - An unreachable collector loses spans (the exporter reports it through its own internal
//!   log); the command itself is never slowed or failed by it.
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{trace::SdkTracerProvider, Resource};
use tracing_subscriber::{registry::LookupSpan, Layer};

/// Keeps the exporter; flushes and stops it when dropped.
pub struct Exporting(SdkTracerProvider);

impl Drop for Exporting {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// The collector's traces URL: `--otlp-endpoint` (a base URL, `/v1/traces` added), else the
/// standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables.
fn endpoint(flag: Option<&str>) -> Option<String> {
    let base = match flag {
        Some(f) => f.to_string(),
        None => {
            if let Ok(full) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                return Some(full).filter(|s| !s.is_empty());
            }
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()?
        }
    };
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    Some(if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    })
}

/// A layer exporting spans to the configured collector, or None when none is configured.
pub fn layer<S>(flag: Option<&str>) -> Option<(Box<dyn Layer<S> + Send + Sync>, Exporting)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let url = endpoint(flag)?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            diag!("tether: cannot export traces to {url}: {e}; continuing without");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("tether").build())
        .build();
    let tracer = provider.tracer("tether");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Some((layer, Exporting(provider)))
}
