//! The handlers: each takes its request apart, calls the engine off the async threads, and
//! converts the engine's report into the API's JSON types. No segmentation logic lives here.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use segmenta_engine::{Role, ServedRun};

use crate::AppState;
use crate::api;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};

/// `Json` whose rejections are [`ApiError`]s (positions of bad JSON, 413, 415).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Query` whose rejections are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Runs engine work on the blocking pool: the engine reads files and runs DataFusion on its
/// own runtime, which must not stall the server's async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> segmenta_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) if e.is_panic() => Err(ApiError::internal("the request's work panicked")),
        Err(_) => Err(ApiError::internal("the request's work was cancelled")),
    }
}

/// The run to read: the one in memory when it is recent (most requests), else looked up (and
/// loaded when a later one landed) on the blocking pool.
async fn current(state: &AppState) -> Result<Arc<ServedRun>, ApiError> {
    if let Some(run) = state.served.recent() {
        return Ok(run);
    }
    let served = state.served.clone();
    blocking(move || served.current()).await
}

/// Liveness: answers without a token.
#[utoipa::path(get, path = "/health", tag = "server", responses((status = 200, body = api::Health)))]
pub async fn health() -> Json<api::Health> {
    Json(api::Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// Every segment of the latest run with its size and share.
#[utoipa::path(get, path = "/v1/segments", tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = api::SegmentList), (status = 401, body = ErrorBody), (status = 409, description = "no run yet", body = ErrorBody)))]
pub async fn segments(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::SegmentList>, ApiError> {
    caller.require(Role::Viewer)?;
    let run = current(&state).await?;
    // Sizes are the run's; descriptions are the project's as it is now (a segment saved since).
    let segments = run
        .segments(&state.served.project())
        .into_iter()
        .map(|s| api::SegmentItem {
            name: s.definition.name,
            kind: s.definition.kind.to_string(),
            description: s.definition.description,
            size: s.size,
            share: s.share,
            as_of: run.as_of().to_string(),
        })
        .collect();
    Ok(Json(api::SegmentList { as_of: run.as_of().to_string(), entities: run.entities(), segments }))
}

/// One segment: its definition, size and history over the snapshots.
#[utoipa::path(get, path = "/v1/segments/{name}", tag = "segments", security(("bearer" = [])),
    params(("name" = String, Path, description = "the segment")),
    responses((status = 200, body = api::SegmentDetail), (status = 404, description = "unknown segment", body = ErrorBody)))]
pub async fn segment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<api::SegmentDetail>, ApiError> {
    caller.require(Role::Viewer)?;
    let run = current(&state).await?;
    let (engine, served) = (state.engine.clone(), state.served.clone());
    let (segment, history, kpis) = {
        let name = name.clone();
        let run = run.clone();
        blocking(move || {
            let segment = run.segment(&served.project(), &name)?;
            let history = segmenta_engine::history(&served.project(), &name)?;
            let kpis = served.kpis(&engine)?;
            Ok((segment, history, kpis))
        })
        .await?
    };
    let (from, to) = segment.definition.movement.clone().unwrap_or_default();
    let segment_kpis = kpis.rows.iter().find(|row| row.name == name).map(api::Kpis::from);
    Ok(Json(api::SegmentDetail {
        name,
        kind: segment.definition.kind.to_string(),
        description: segment.definition.description,
        rule: segment.definition.rule,
        parent: segment.definition.parent,
        from,
        to,
        size: segment.size,
        share: segment.share,
        as_of: run.as_of().to_string(),
        history: history
            .points
            .into_iter()
            .map(|p| api::HistoryPoint {
                snapshot: p.snapshot,
                as_of: p.as_of,
                size: p.size,
                share: p.share,
                entered: p.entered,
                exited: p.exited,
            })
            .collect(),
        kpis: segment_kpis,
        population: Some(api::Kpis::from(&kpis.population)),
        compared_with: kpis.compare.as_ref().map(|(start, _)| start.as_of.clone()),
    }))
}

/// Saves a rule segment in segmenta.toml (editor): the rule is validated, then the whole
/// project, then the file is replaced atomically with its comments and layout kept. Its members
/// are computed by the next run; the answer previews it on the latest run.
#[utoipa::path(put, path = "/v1/segments/{name}", tag = "segments", security(("bearer" = [])),
    params(("name" = String, Path, description = "the segment")),
    request_body = api::SaveSegment,
    responses((status = 201, description = "created", body = api::SavedSegment), (status = 200, description = "replaced", body = api::SavedSegment),
        (status = 403, description = "not an editor", body = ErrorBody),
        (status = 409, description = "not a rule segment (a scheme tier, static list, ...)", body = ErrorBody),
        (status = 422, description = "the rule or the edited project does not validate", body = ErrorBody)))]
pub async fn save_segment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<api::SaveSegment>,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    let (engine, served) = (state.engine.clone(), state.served.clone());
    let rule = request.rule.clone();
    let (saved, preview) = {
        let name = name.clone();
        blocking(move || {
            let saved = served.save_segment(&name, &request.rule, request.description.as_deref())?;
            // Before any run there is nothing to preview on; the save stands.
            let preview = engine.preview(&served.project(), &request.rule, 10).ok();
            Ok((saved, preview))
        })
        .await?
    };
    let status = match saved {
        segmenta_engine::Saved::Created => StatusCode::CREATED,
        segmenta_engine::Saved::Replaced => StatusCode::OK,
    };
    let body = api::SavedSegment {
        name,
        saved: if status == StatusCode::CREATED { "created" } else { "replaced" }.to_string(),
        rule,
        preview: preview.map(|p| api::Preview {
            size: p.size,
            entities: p.entities,
            share: p.share,
            sample: p.sample,
            as_of: p.as_of,
        }),
    };
    Ok((status, Json(body)).into_response())
}

/// Deletes a rule segment from segmenta.toml (editor); refused while anything reads it.
#[utoipa::path(delete, path = "/v1/segments/{name}", tag = "segments", security(("bearer" = [])),
    params(("name" = String, Path, description = "the segment")),
    responses((status = 204, description = "deleted"), (status = 404, description = "unknown segment", body = ErrorBody),
        (status = 409, description = "not a rule segment", body = ErrorBody),
        (status = 422, description = "another segment, scheme, score or movement reads it", body = ErrorBody)))]
pub async fn delete_segment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Editor)?;
    let served = state.served.clone();
    blocking(move || served.delete_segment(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members per page of a stream, as CSV.
const CSV_SLICE: usize = 8192;

/// A segment's members: a page of ids as JSON, or with `Accept: text/csv` every member as a
/// streamed CSV (`entity_id` column; cursor and limit are not read).
#[utoipa::path(get, path = "/v1/segments/{name}/members", tag = "segments", security(("bearer" = [])),
    params(("name" = String, Path, description = "the segment"), api::MembersQuery),
    responses((status = 200, body = api::MembersPage, content_type = "application/json"),
        (status = 200, description = "every member, `entity_id` per line after a header", content_type = "text/csv"),
        (status = 400, description = "bad cursor or limit", body = ErrorBody),
        (status = 404, description = "unknown segment", body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<api::MembersQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let run = current(&state).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/csv")));
    if wants_csv {
        // Checked before the answer starts, so an unknown segment is a 404, not a cut stream.
        run.segment(&state.served.project(), &name)?;
        let served = state.served.clone();
        let stream = futures_util::stream::unfold(Some(0usize), move |start| {
            let (run, served, name) = (run.clone(), served.clone(), name.clone());
            async move {
                let start = start?;
                let mut chunk = String::new();
                if start == 0 {
                    chunk.push_str("entity_id\n");
                }
                let ids = match run.members_slice(&served.project(), &name, start, CSV_SLICE) {
                    Ok(ids) => ids,
                    Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                };
                let next = if ids.len() == CSV_SLICE { Some(start + CSV_SLICE) } else { None };
                for id in &ids {
                    csv_field(&mut chunk, id);
                    chunk.push('\n');
                }
                if chunk.is_empty() {
                    return None;
                }
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), next))
            }
        });
        let mut response = Response::new(Body::from_stream(stream));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        return Ok(response);
    }
    let served = state.served.clone();
    let limit = query.limit.unwrap_or(100);
    let page = {
        let (run, name) = (run.clone(), name.clone());
        blocking(move || run.members_page(&served.project(), &name, query.cursor.as_deref(), limit)).await?
    };
    Ok(Json(api::MembersPage {
        segment: name,
        as_of: run.as_of().to_string(),
        size: page.size,
        members: page.ids,
        next_cursor: page.next,
    })
    .into_response())
}

/// A CSV field: quoted when it holds a comma, quote, or line break.
fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// One entity of the latest run: its attributes, traits and segments.
#[utoipa::path(get, path = "/v1/entities/{id}", tag = "entities", security(("bearer" = [])),
    params(("id" = String, Path, description = "the entity's key")),
    responses((status = 200, body = api::Entity), (status = 404, description = "unknown entity", body = ErrorBody)))]
pub async fn entity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<api::Entity>, ApiError> {
    caller.require(Role::Viewer)?;
    let run = current(&state).await?;
    // An in-memory lookup: answered on this thread.
    let view = run.entity(&id)?;
    Ok(Json(api::Entity {
        id: view.id,
        as_of: view.as_of,
        values: view.values.into_iter().map(|(name, value)| (name, api::cell_json(value))).collect(),
        segments: view.segments,
    }))
}

/// Why the entity is (or is not) in the segment: the rule's tree with each node's truth and
/// operands, the scheme tiers tried, `in_segment` references and the macro segment explained.
#[utoipa::path(get, path = "/v1/entities/{id}/why/{segment}", tag = "entities", security(("bearer" = [])),
    params(("id" = String, Path, description = "the entity's key"), ("segment" = String, Path, description = "the segment")),
    responses((status = 200, body = api::Explanation), (status = 404, description = "unknown entity or segment", body = ErrorBody)))]
pub async fn why(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, segment)): Path<(String, String)>,
) -> Result<Json<api::Explanation>, ApiError> {
    caller.require(Role::Viewer)?;
    let served = state.served.clone();
    let mut explained = blocking(move || served.explain(&id, Some(&segment))).await?;
    let explanation =
        explained.pop().ok_or_else(|| ApiError::internal("an explanation without its segment"))?;
    Ok(Json(api::Explanation::from(explanation)))
}

/// The most sample ids a preview returns.
const MAX_SAMPLE: usize = 1000;

/// The size, share and a sample of an ad-hoc rule on the latest run, or its problems with
/// their positions (422).
#[utoipa::path(post, path = "/v1/preview", tag = "segments", security(("bearer" = [])),
    request_body = api::PreviewRequest,
    responses((status = 200, body = api::Preview),
        (status = 400, description = "bad JSON", body = ErrorBody),
        (status = 422, description = "the rule does not validate; `problems` has each with its position", body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::PreviewRequest>,
) -> Result<Json<api::Preview>, ApiError> {
    caller.require(Role::Viewer)?;
    let sample = request.sample.unwrap_or(10);
    if sample > MAX_SAMPLE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "usage",
            format!("sample {sample} is more than {MAX_SAMPLE}"),
            Some("ask for a smaller sample; the members endpoint pages through a segment".into()),
        ));
    }
    let (engine, served) = (state.engine.clone(), state.served.clone());
    let preview = blocking(move || engine.preview(&served.project(), &request.rule, sample)).await?;
    Ok(Json(api::Preview {
        size: preview.size,
        entities: preview.entities,
        share: preview.share,
        sample: preview.sample,
        as_of: preview.as_of,
    }))
}

/// Every API token of the project (admin).
#[utoipa::path(get, path = "/v1/tokens", tag = "server", security(("bearer" = [])),
    responses((status = 200, body = api::TokenList), (status = 403, description = "not an admin", body = ErrorBody)))]
pub async fn tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<api::TokenList>, ApiError> {
    caller.require(Role::Admin)?;
    let served = state.served.clone();
    let tokens = blocking(move || segmenta_engine::list_tokens(&served.project())).await?;
    Ok(Json(api::TokenList {
        tokens: tokens
            .into_iter()
            .map(|t| api::Token {
                name: t.name,
                role: t.role.name().to_string(),
                prefix: t.prefix,
                created_at: t.created_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    }))
}

/// Events as they happen: each row is checked against the events' schema; the accepted ones
/// are appended to the store's event log and synced to disk before the answer, so an answered
/// event survives a crash. Runs started later read them (`POST /v1/runs`).
#[utoipa::path(post, path = "/v1/events", tag = "events", security(("bearer" = [])),
    request_body = api::PostEvents,
    responses((status = 200, description = "every row accepted or refused with its reason", body = api::PostedEvents),
        (status = 400, description = "bad JSON, or more than 10,000 events", body = ErrorBody),
        (status = 403, description = "not an editor", body = ErrorBody),
        (status = 409, description = "the project has no [events]", body = ErrorBody),
        (status = 413, description = "body over 1 MiB", body = ErrorBody)))]
pub async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::PostEvents>,
) -> Result<Json<api::PostedEvents>, ApiError> {
    caller.require(Role::Editor)?;
    let rows: Vec<String> = request.events.into_iter().map(|raw| raw.get().to_string()).collect();
    let served = state.served.clone();
    let batch = request.batch;
    let report = blocking(move || served.ingest_events(&rows, batch.as_deref())).await?;
    Ok(Json(api::PostedEvents {
        duplicate: report.duplicate,
        unknown_entities: report.unknown_entities,
        accepted: report.accepted,
        rejected: report.rejected.len(),
        rejects: report
            .rejected
            .into_iter()
            .map(|r| api::EventReject { index: r.index, column: r.column, reason: r.message })
            .collect(),
    }))
}

/// Starts a run of the project in the background (editor); 202 with its id. One at a time:
/// 409 `run_in_progress` while another runs. Reads keep seeing the last complete run until
/// this one is written.
#[utoipa::path(post, path = "/v1/runs", tag = "runs", security(("bearer" = [])),
    request_body(content = api::StartRun, description = "optional; an empty body runs as of the project's default"),
    responses((status = 202, body = api::Run), (status = 400, description = "bad as-of", body = ErrorBody),
        (status = 403, description = "not an editor", body = ErrorBody),
        (status = 409, description = "a run is running", body = ErrorBody)))]
pub async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Editor)?;
    let request: api::StartRun = if body.iter().all(u8::is_ascii_whitespace) {
        api::StartRun::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            let mut error = ApiError::new(
                if e.is_syntax() || e.is_eof() {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                if e.is_syntax() || e.is_eof() { "bad_json" } else { "bad_request_body" },
                format!("the body does not fit the request: {e}"),
                Some("send `{}` or `{\"as_of\": \"2025-06-30\"}`".into()),
            );
            (error.body.line, error.body.column) = (Some(e.line()), Some(e.column()));
            error
        })?
    };
    let (engine, served, runs) = (state.engine.clone(), state.served.clone(), state.runs.clone());
    let id = runs.start(engine, served.project(), request.as_of.as_deref())?;
    let run = state.runs.get(id)?;
    let mut response = (StatusCode::ACCEPTED, Json(api::Run::from(run))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/runs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The runs started on this server, newest first.
#[utoipa::path(get, path = "/v1/runs", tag = "runs", security(("bearer" = [])), responses((status = 200, body = api::RunList)))]
pub async fn runs(State(state): State<AppState>, caller: Caller) -> Result<Json<api::RunList>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(api::RunList { runs: state.runs.list()?.into_iter().map(api::Run::from).collect() }))
}

/// One run: its state, progress, and once written its as-of and segment sizes (or its error).
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs", security(("bearer" = [])),
    params(("id" = u64, Path, description = "the run's id")),
    responses((status = 200, body = api::Run), (status = 404, description = "unknown run", body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<api::Run>, ApiError> {
    caller.require(Role::Viewer)?;
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "usage",
            format!("invalid run id `{id}`"),
            Some("run ids are numbers, as POST /v1/runs answers them".into()),
        )
    })?;
    Ok(Json(api::Run::from(state.runs.get(id)?)))
}

/// Changes of membership (`entered` / `exited`) as posted events moved them, oldest first,
/// paged by sequence number; with the live view's state.
#[utoipa::path(get, path = "/v1/changes", tag = "events", security(("bearer" = [])),
    params(api::ChangesQuery),
    responses((status = 200, body = api::ChangeList), (status = 400, description = "bad limit", body = ErrorBody)))]
pub async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<api::ChangesQuery>,
) -> Result<Json<api::ChangeList>, ApiError> {
    caller.require(Role::Viewer)?;
    let after = query.after.unwrap_or(0);
    let served = state.served.clone();
    let (changes, live, posted) = blocking(move || {
        let changes = served.changes(after, query.limit.unwrap_or(1000), query.segment.as_deref())?;
        let live = served.current().ok().and_then(|run| run.live().cloned());
        Ok((changes, live, served.events_posted()))
    })
    .await?;
    Ok(Json(api::ChangeList {
        next_after: changes.last().map_or(after, |c| c.seq),
        changes: changes.into_iter().map(api::Change::from).collect(),
        live: live.map(|l| api::LiveInfo {
            events: l.events,
            through: l.through,
            events_posted: posted,
            updated_at: l.updated_at,
            last_change: l.last_change,
        }),
    }))
}

/// What no route matches: 404 `no_route`.
pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint",
        Some("/openapi.json lists the endpoints".into()),
    )
}

/// A method the route does not take: 405.
pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "the endpoint does not take this method",
        Some("/openapi.json lists each endpoint's methods".into()),
    )
}
