//! Errors as HTTP answers: every failure is a JSON body `{code, message, hint, line, column,
//! problems}` with a status chosen here, and only here, from the engine's stable codes.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use segmenta_engine::{ErrorDetail, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// One problem of a request (a rule's, a field's), with its position.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// Stable code, e.g. `unknown_attribute`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Where: `the rule`, ``segment `vip` ``, `segmenta.toml`.
    pub source: String,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The span in characters of the rule text: `[start, end)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<[usize; 2]>,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// 1-based line of the problem (in the rule, the request body or the project file).
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// Every problem, when there are several (rules, configuration).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemBody>,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (boxed: results of handlers stay small).
    pub body: Box<ErrorBody>,
}

impl ApiError {
    /// An error of the server itself (not of the engine).
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>, hint: Option<String>) -> ApiError {
        ApiError {
            status,
            body: Box::new(ErrorBody {
                code: code.to_string(),
                message: message.into(),
                hint,
                line: None,
                column: None,
                problems: Vec::new(),
            }),
        }
    }

    /// 401: no token, or one that is not a live token of the project.
    pub fn unauthorized(code: &str, message: &str) -> ApiError {
        let hint =
            "send `Authorization: Bearer TOKEN`; `segmenta token create --role viewer --name NAME` makes one";
        ApiError::new(StatusCode::UNAUTHORIZED, code, message, Some(hint.into()))
    }

    /// 500 `internal`: a bug, whose details stay in the server's log.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message,
            Some("this is a bug in segmenta; the server's log has the details".into()),
        )
    }
}

/// The HTTP status of an engine error: the one place codes become statuses.
pub fn status_of(detail: &ErrorDetail) -> StatusCode {
    // Problems of rules or configuration (a rule naming an unknown segment included): the
    // request is understood but does not validate.
    if !detail.problems.is_empty() && detail.kind == ErrorKind::User {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    match detail.code {
        "unknown_segment" | "unknown_snapshot" | "unknown_scheme" | "unknown_entity" | "unknown_token"
        | "unknown_run" | "unknown_column" | "unknown_feature" => StatusCode::NOT_FOUND,
        "no_run" | "segment_not_in_run" | "scheme_not_in_run" => StatusCode::CONFLICT,
        "cancelled" | "not_editable" | "run_in_progress" | "no_events" => StatusCode::CONFLICT,
        _ => match detail.kind {
            // A request whose rule or values do not validate is well formed but unprocessable;
            // a bad option (`usage`) is a bad request.
            ErrorKind::User if detail.code == "usage" || detail.code == "invalid_as_of" => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::User => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Environment => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

impl From<segmenta_engine::Error> for ApiError {
    fn from(error: segmenta_engine::Error) -> ApiError {
        let detail = error.detail();
        if status_of(&detail).is_server_error() {
            // The code and kind only: the message may name an entity (personal data); the
            // client gets it in the answer.
            tracing::error!(target: "segmenta::http", code = detail.code, kind = ?detail.kind, "request failed");
        }
        ApiError::from_detail(detail)
    }
}

impl ApiError {
    /// The answer of an engine error's detail.
    pub fn from_detail(detail: ErrorDetail) -> ApiError {
        let status = status_of(&detail);
        let problems = detail
            .problems
            .into_iter()
            .map(|p| ProblemBody {
                code: p.code.to_string(),
                message: p.message,
                hint: p.hint,
                source: p.source,
                line: p.line,
                column: p.column,
                span: p.span.map(|(start, end)| [start, end]),
            })
            .collect();
        ApiError {
            status,
            body: Box::new(ErrorBody {
                code: detail.code.to_string(),
                message: detail.message,
                hint: detail.hint,
                line: detail.line,
                column: detail.column,
                problems,
            }),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => {
                let (line, column) = serde_position(&e.body_text());
                let mut error = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_json",
                    format!("the body is not valid JSON: {}", inner_message(&e.body_text())),
                    Some("send a JSON object; check quotes and commas at the position given".into()),
                );
                (error.body.line, error.body.column) = (line, column);
                error
            }
            JsonRejection::JsonDataError(e) => {
                let (line, column) = serde_position(&e.body_text());
                let mut error = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "bad_request_body",
                    format!("the body does not fit the request: {}", inner_message(&e.body_text())),
                    Some("see /openapi.json for the fields this endpoint takes".into()),
                );
                (error.body.line, error.body.column) = (line, column);
                error
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON",
                Some("send `Content-Type: application/json`".into()),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            other => ApiError::new(other.status(), "bad_request_body", other.body_text(), None),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("the query string does not fit the request: {}", rejection.body_text()),
            Some("see /openapi.json for the parameters this endpoint takes".into()),
        )
    }
}

/// 413 `body_too_large`.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {} bytes", crate::MAX_BODY),
        Some("send smaller batches".into()),
    )
}

/// serde_json's "… at line L column C" as numbers.
fn serde_position(text: &str) -> (Option<usize>, Option<usize>) {
    let Some(at) = text.rfind(" at line ") else {
        return (None, None);
    };
    let mut words = text[at + " at line ".len()..].split_whitespace();
    let line = words.next().and_then(|w| w.parse().ok());
    let column = match (words.next(), words.next()) {
        (Some("column"), Some(c)) => c.trim_end_matches(|ch: char| !ch.is_ascii_digit()).parse().ok(),
        _ => None,
    };
    (line, column)
}

/// The part of axum's rejection text that serde wrote (after axum's "…: "), with the field's
/// path when it names one.
fn inner_message(text: &str) -> String {
    let message = text.split_once(": ").map_or(text, |(_, m)| m);
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(*self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_positions_are_read_back_as_numbers() {
        let text = "Failed to parse the request body as JSON: expected `,` or `}` at line 3 column 7";
        assert_eq!(serde_position(text), (Some(3), Some(7)));
        assert_eq!(inner_message(text), "expected `,` or `}`");
        assert_eq!(serde_position("no position"), (None, None));
    }
}
