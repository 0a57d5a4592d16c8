//! The API's one error shape: `{"schema_version": 1, "error": {"code": "…", "message": "…"}}`
//! with the HTTP status that goes with the code (and `line`/`column` for a spec error).
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use tether_core::{spec::SpecError, store::StoreError};
use tether_fleet::{context::BuildError, context::OpenError, view::SCHEMA_VERSION};

/// An error answer of the API.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// One word a client can branch on (see [`ApiError::code`]).
    code: &'static str,
    /// What went wrong and what to do; never a secret.
    message: String,
    /// 1-based line of a spec error, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    /// 1-based column of a spec error, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
}

#[derive(Serialize)]
struct Body<'a> {
    schema_version: u32,
    error: &'a ApiError,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// 400 `bad_request`: the request cannot be served as sent; nothing was written.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`: the run is not in a state that allows this.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong and what to do.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A spec that does not build: 400 with its line and column where known.
    pub fn spec(e: &SpecError) -> ApiError {
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "bad_spec", e.to_string());
        if let SpecError::Invalid { line, column, .. } = e {
            err.line = Some(*line);
            err.column = Some(*column);
        }
        if let SpecError::UnknownBackend { line, .. } = e {
            err.line = Some(*line);
        }
        err
    }

    /// A store error: busy or unreachable is 503 (try again), anything else 500.
    pub fn store(e: &StoreError) -> ApiError {
        if e.is_transient() {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("state store busy or unreachable: {e}; try again"),
            )
        } else if let StoreError::NotFound { .. } = e {
            ApiError::not_found(e.to_string())
        } else {
            tracing::error!(error = %e, "state store error");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_error",
                format!("state store error: {e}"),
            )
        }
    }
}

impl From<&OpenError> for ApiError {
    fn from(e: &OpenError) -> ApiError {
        // Opening may fail for good (no store yet, schema too old): the server is not ready.
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("state store not available: {e}"),
        )
    }
}

impl From<&BuildError> for ApiError {
    fn from(e: &BuildError) -> ApiError {
        ApiError::spec(&e.source)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            schema_version: SCHEMA_VERSION,
            error: &self,
        };
        (self.status, Json(body)).into_response()
    }
}
