//! The server: starting and stopping the fake, routing each request by hand,
//! the fault queues a request may be answered from, and logging it as a [`Call`].

use super::socket::serve_sockets;
use super::wire::{parse_body, parse_form, Answer, BodyError};
use super::{Call, FakeSlack, Fault, Handle, Shared, Workspace, DEFAULT_APP_TOKEN, DEFAULT_TOKEN};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Far above any message Slack accepts; only guards the fake against a runaway client.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A shutdown waits this long for in-flight requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Real Slack takes GET (arguments in the query string) for any method; the
/// fake takes it only where the bot uses it, so a GET anywhere else still
/// shows up as a client mistake. slack-morphism asks for an upload URL with GET.
const GET_METHODS: &[&str] = &["files.getUploadURLExternal"];

impl FakeSlack {
    /// Starts a fake that accepts [`DEFAULT_TOKEN`].
    pub async fn start() -> FakeSlack {
        Self::start_with_token(DEFAULT_TOKEN).await
    }

    /// Starts a fake on `127.0.0.1:0` that accepts only `token` (and
    /// [`DEFAULT_APP_TOKEN`] for `apps.connections.open`).
    pub async fn start_with_token(token: &str) -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Slack: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake Slack: local address");
        let sockets = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Slack: bind the websocket listener");
        let socket_addr = sockets.local_addr().expect("fake Slack: websocket address");
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            token: token.to_string(),
            app_token: DEFAULT_APP_TOKEN.to_string(),
            state: Mutex::new(Workspace {
                socket_addr: Some(socket_addr),
                api_addr: Some(addr),
                ..Workspace::default()
            }),
            stopped: stopped.clone(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let socket_task = tokio::spawn(serve_sockets(sockets, shared.clone(), stopped.clone()));
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            let signal = async move {
                // An error means every sender is gone: the last clone was dropped.
                let _ = stopped.wait_for(|s| *s).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        FakeSlack {
            handle: Arc::new(Handle {
                shared,
                addr,
                stop,
                task: Mutex::new(Some(task)),
                socket_task: Mutex::new(Some(socket_task)),
            }),
        }
    }

    /// The DM channel ID the fake uses for `user`, as `conversations.open`
    /// answers and as posting to the user ID resolves to.
    pub fn dm_channel_for(user: &str) -> String {
        format!("D{user}")
    }

    pub fn token(&self) -> String {
        self.handle.shared.token.clone()
    }

    /// The app-level token (`xapp-…`) Socket Mode connects with.
    pub fn app_token(&self) -> String {
        self.handle.shared.app_token.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// `http://127.0.0.1:PORT/api/`; the client appends the method name.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/", self.handle.addr)
    }

    /// A `response_url` for a slash command or interaction payload.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{id}", self.handle.addr)
    }

    /// Stops accepting connections and waits (boundedly) for in-flight
    /// requests; held [`Fault::Timeout`] requests are cut short. The logs
    /// stay readable afterwards.
    pub async fn shutdown(&self) {
        self.handle.stop.send_replace(true);
        let task = self
            .handle
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut task) = task {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        let socket_task = self
            .handle
            .socket_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = socket_task {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, Workspace> {
        self.handle.shared.lock()
    }
}

enum Route {
    Api(String),
    ResponseUrl(String),
    /// An upload URL handed out by `files.getUploadURLExternal`.
    Upload(String),
    Other,
}

fn route(path: &str) -> Route {
    if let Some(method) = path.strip_prefix("/api/") {
        if !method.is_empty() && !method.contains('/') {
            return Route::Api(method.to_string());
        }
    }
    if let Some(id) = path.strip_prefix("/response/") {
        if !id.is_empty() && !id.contains('/') {
            return Route::ResponseUrl(id.to_string());
        }
    }
    if let Some(id) = path.strip_prefix("/upload/") {
        if !id.is_empty() && !id.contains('/') {
            return Route::Upload(id.to_string());
        }
    }
    Route::Other
}

/// The only handler: routing by hand keeps every answer, including 404/405
/// and unreadable bodies, JSON and logged, which axum's extractors would not.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| e.to_string());
    let answer = shared.process(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        bytes,
        at,
    );
    if let Some(hold) = answer.hold {
        let mut stopped = shared.stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(hold) => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
    }
    answer.into_response()
}

impl Shared {
    pub(super) fn process(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        bytes: Result<Bytes, String>,
        at: Instant,
    ) -> Answer {
        let route = route(path);
        if let Route::Upload(id) = &route {
            return self.process_upload(method, id, headers, bytes, at);
        }
        let name = match &route {
            Route::Api(m) => m.clone(),
            Route::ResponseUrl(id) => format!("response_url:{id}"),
            Route::Upload(_) | Route::Other => path.to_string(),
        };
        let takes_get = matches!(&route, Route::Api(m) if GET_METHODS.contains(&m.as_str()));
        let parsed = match &bytes {
            // A GET's arguments are its query string.
            Ok(_) if *method == Method::GET && takes_get => {
                parse_form(query.unwrap_or("").as_bytes())
            }
            Ok(b) => parse_body(headers, b),
            Err(e) => Err(BodyError {
                code: "invalid_form_data",
                detail: format!("body could not be read: {e}"),
            }),
        };
        let logged_body = match (&parsed, &bytes) {
            (Ok(v), _) => v.clone(),
            (Err(_), Ok(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
            (Err(_), Err(_)) => Value::Null,
        };

        let mut ws = self.lock();
        let answer = if matches!(route, Route::Other) {
            Answer::error("not_found").with_status(StatusCode::NOT_FOUND)
        } else if *method != Method::POST && !(*method == Method::GET && takes_get) {
            // Real Slack also takes GET; the bot uses it only for
            // GET_METHODS, so refusing it elsewhere loudly catches a client
            // misconfiguration.
            Answer {
                error_detail: Some(format!("{method} is not supported by the fake")),
                ..Answer::error("method_not_allowed").with_status(StatusCode::METHOD_NOT_ALLOWED)
            }
        } else if let Some((m, after)) = match &route {
            Route::Api(m) => ws.answer_fault(&fault_keys(&name, &parsed)).map(|f| (m, f)),
            _ => None,
        } {
            // Slack did the work; the answer never arrives, or arrives late.
            let done = ws.api(m, &self.token, headers, parsed, at);
            match after {
                Fault::HeldAnswer(hold) => Answer {
                    hold: Some(hold),
                    outcome: "held_answer".into(),
                    error_detail: Some(format!(
                        "injected fault: answer held {hold:?} after {}",
                        done.outcome
                    )),
                    ..done
                },
                _ => Answer {
                    outcome: "lost_answer".into(),
                    error_detail: Some(format!(
                        "injected fault: answer lost after {}",
                        done.outcome
                    )),
                    ..Answer::error("request_timeout").with_status(StatusCode::SERVICE_UNAVAILABLE)
                },
            }
        } else if let Some(fault) = ws.take_fault(&fault_keys(&name, &parsed)) {
            Answer::fault(fault)
        } else {
            match &route {
                Route::Api(m) => {
                    // Socket Mode's method takes the app-level token, and only it.
                    let token = if m == "apps.connections.open" {
                        &self.app_token
                    } else {
                        &self.token
                    };
                    ws.api(m, token, headers, parsed, at)
                }
                Route::ResponseUrl(id) => ws.response_url(id, parsed),
                Route::Upload(_) | Route::Other => unreachable!("answered above"),
            }
        };
        ws.calls.push(Call {
            method: name,
            body: logged_body,
            at,
            outcome: answer.outcome.clone(),
            error_detail: answer.error_detail.clone(),
            warnings: answer.warnings.clone(),
        });
        answer
    }
}

/// The fault queues a call draws from, first to last: the method's for its
/// `channel` argument (`chat.postMessage:U0TIER1`), the method's, any call's.
fn fault_keys<E>(name: &str, parsed: &Result<Value, E>) -> Vec<String> {
    let channel = parsed
        .as_ref()
        .ok()
        .and_then(|b| b.get("channel"))
        .and_then(Value::as_str);
    let mut keys: Vec<String> = channel.map(|c| format!("{name}:{c}")).into_iter().collect();
    keys.extend([name.to_string(), "*".to_string()]);
    keys
}

impl Workspace {
    /// The next queued fault of the first of `keys` with one queued, when it
    /// is one that lets Slack act first ([`Fault::LostAnswer`],
    /// [`Fault::HeldAnswer`]), taking it.
    pub(super) fn answer_fault(&mut self, keys: &[String]) -> Option<Fault> {
        for key in keys {
            if let Some(queue) = self.faults.get_mut(key) {
                if matches!(
                    queue.front(),
                    Some(Fault::LostAnswer | Fault::HeldAnswer(_))
                ) {
                    return queue.pop_front();
                }
                if !queue.is_empty() {
                    return None;
                }
            }
        }
        None
    }

    pub(super) fn take_fault(&mut self, keys: &[String]) -> Option<Fault> {
        for key in keys {
            if let Some(fault) = self.faults.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(fault);
            }
        }
        None
    }
}
