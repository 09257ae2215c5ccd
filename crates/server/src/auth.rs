//! Bearer tokens: every route but `/health` and `/openapi.json` needs a live token of the
//! project (401 without one), and each route names the least role it needs (403 below it).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use segmenta_engine::Role;

use crate::AppState;
use crate::error::ApiError;

/// Who is calling: the token's name and role (the token itself is not kept).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// `Ok` when the caller's role is `role` or above; 403 `forbidden` else.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {} role; token `{}` is {}", role.name(), self.name, self.role.name()),
            Some(format!("use a token made with `segmenta token create --role {}`", role.name())),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a route that needs a token was reached without one"))
    }
}

/// The middleware in front of `/v1`: checks the bearer token and records the caller.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        return ApiError::unauthorized("unauthorized", "this needs an API token").into_response();
    };
    let Some(secret) = header.strip_prefix("Bearer ").map(str::trim) else {
        return ApiError::unauthorized("unauthorized", "the Authorization header must be `Bearer TOKEN`")
            .into_response();
    };
    // A hash and a map lookup (the table is re-read once a second): answered on this thread.
    match state.tokens.verify(secret) {
        Ok(Some(token)) => {
            request.extensions_mut().insert(Caller { name: token.name, role: token.role });
            next.run(request).await
        }
        Ok(None) => ApiError::unauthorized("invalid_token", "the token is not a live token of this project")
            .into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}
