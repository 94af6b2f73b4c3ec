//! Files through Slack's external upload flow: `files.getUploadURLExternal`,
//! the upload URL it hands out, and `files.completeUploadExternal`.

use crate::sim::fake_slack::wire::{is_user_id, str_arg, Answer, Refusal, Reply};
use crate::sim::fake_slack::{Call, Shared, UploadedFile, Workspace, UPLOAD_CALL};
use axum::http::{header, HeaderMap, Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Instant;

/// Slack's limit on `alt_txt` in `files.getUploadURLExternal`.
const ALT_TXT_MAX_CHARS: usize = 1000;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A file between `files.getUploadURLExternal` and its completion.
#[derive(Clone, Debug)]
pub(in crate::sim::fake_slack) struct PendingFile {
    filename: String,
    length: usize,
    alt_text: String,
    /// `None` until its bytes arrive at the upload URL.
    bytes: Option<Vec<u8>>,
}

impl Shared {
    /// `POST /upload/<file_id>`: the bytes of a file whose upload URL
    /// `files.getUploadURLExternal` handed out. Answers are plain text, as
    /// Slack's are: `200 OK - <n>`, or a 4xx for an unknown (or already
    /// completed) file ID and for a byte count other than the `length` given.
    pub(in crate::sim::fake_slack) fn process_upload(
        &self,
        method: &Method,
        id: &str,
        headers: &HeaderMap,
        bytes: Result<Bytes, String>,
        at: Instant,
    ) -> Answer {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let file = bytes
            .as_ref()
            .map_err(|e| format!("body could not be read: {e}"))
            .and_then(|b| upload_bytes(&content_type, b));
        let mut logged = json!({ "file_id": id, "content_type": content_type });
        if let Ok(f) = &file {
            logged["bytes"] = json!(f.len());
        }
        let mut ws = self.lock();
        let answer = if *method != Method::POST {
            Answer::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed".into(),
                "method_not_allowed",
                Some(format!("{method} to an upload URL")),
            )
        } else if let Some(fault) = ws.take_fault(&[UPLOAD_CALL.to_string(), "*".to_string()]) {
            Answer::fault(fault)
        } else {
            ws.upload(id, file)
        };
        ws.calls.push(Call {
            method: UPLOAD_CALL.to_string(),
            body: logged,
            at,
            outcome: answer.outcome.clone(),
            error_detail: answer.error_detail.clone(),
            warnings: Vec::new(),
        });
        answer
    }
}

/// The file in an upload's body: the body itself, or in a multipart body the
/// part that carries a filename (else the first part).
fn upload_bytes(content_type: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/form-data") {
        return Ok(body.to_vec());
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or("a multipart body without a boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, &delimiter) else {
            return Err("a multipart part without its closing boundary".into());
        };
        let part = rest[..end].strip_prefix(b"\r\n").unwrap_or(&rest[..end]);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            return Err("a multipart part without headers".into());
        };
        let head = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        parts.push((head.contains("filename="), part[split + 4..].to_vec()));
        rest = &rest[end..];
    }
    let position = parts.iter().position(|(named, _)| *named).unwrap_or(0);
    parts
        .into_iter()
        .nth(position)
        .map(|(_, bytes)| bytes)
        .ok_or_else(|| "a multipart body without parts".into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Workspace {
    /// `files.getUploadURLExternal`: a file ID and an upload URL for
    /// `length` bytes named `filename`.
    pub(super) fn get_upload_url(
        &mut self,
        body: &Value,
        json_body: bool,
    ) -> Result<Reply, Refusal> {
        let invalid = |msg: String| Refusal::with_messages("invalid_arguments", vec![msg]);
        if json_body {
            // Slack reads this method's arguments from the form or the query
            // only: a JSON body reaches it as no arguments at all.
            return Err(Refusal {
                detail: Some(
                    "files.getUploadURLExternal does not read a JSON body; send form or query arguments"
                        .into(),
                ),
                ..invalid("[ERROR] missing required field: filename".into())
            });
        }
        let filename = str_arg(body, "filename")
            .ok_or_else(|| invalid("[ERROR] missing required field: filename".into()))?
            .to_string();
        let length = match body.get("length") {
            None | Some(Value::Null) => {
                return Err(invalid("[ERROR] missing required field: length".into()))
            }
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            Some(_) => None,
        }
        .ok_or_else(|| invalid("[ERROR] length must be an integer".into()))?;
        if length == 0 {
            // Slack's documented answer for a zero length.
            return Err(Refusal {
                detail: Some("length is 0".into()),
                ..Refusal::new("missing_argument")
            });
        }
        if length < 0 {
            return Err(invalid(format!(
                "[ERROR] length must be positive, got {length}"
            )));
        }
        let alt_text = str_arg(body, "alt_txt").unwrap_or("").to_string();
        if alt_text.chars().count() > ALT_TXT_MAX_CHARS {
            return Err(Refusal::new("alt_txt_too_large"));
        }
        let addr = self
            .api_addr
            .ok_or_else(|| Refusal::new("internal_error"))?;
        self.file_counter += 1;
        let file_id = format!("F{:010}", self.file_counter);
        self.pending_files.insert(
            file_id.clone(),
            PendingFile {
                filename,
                length: length as usize,
                alt_text,
                bytes: None,
            },
        );
        Ok(Reply::new(json!({
            "ok": true,
            "upload_url": format!("http://{addr}/upload/{file_id}"),
            "file_id": file_id,
        })))
    }

    /// The bytes for a pending file's upload URL.
    pub(super) fn upload(&mut self, id: &str, file: Result<Vec<u8>, String>) -> Answer {
        let Some(pending) = self.pending_files.get_mut(id) else {
            return Answer::text(
                StatusCode::NOT_FOUND,
                "Not Found".into(),
                "not_found",
                Some(format!("no upload is pending for file {id}")),
            );
        };
        let bytes = match file {
            Ok(b) => b,
            Err(why) => {
                return Answer::text(
                    StatusCode::BAD_REQUEST,
                    "Bad Request".into(),
                    "bad_request",
                    Some(why),
                )
            }
        };
        if bytes.len() != pending.length {
            let detail = format!(
                "{} bytes arrived for file {id}, whose length was given as {}",
                bytes.len(),
                pending.length
            );
            return Answer::text(
                StatusCode::BAD_REQUEST,
                "Bad Request: length mismatch".into(),
                "length_mismatch",
                Some(detail),
            );
        }
        let n = bytes.len();
        pending.bytes = Some(bytes);
        Answer::text(StatusCode::OK, format!("OK - {n}"), "ok", None)
    }

    /// `files.completeUploadExternal`: shares uploaded files in `channel_id`
    /// (in `thread_ts`'s thread if given). Each upload completes once: its
    /// file ID is then unknown, as on Slack (`file_not_found`).
    pub(super) fn complete_upload(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let invalid = |msg: String| Refusal::with_messages("invalid_arguments", vec![msg]);
        let files = match body.get("files") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(Value::Array(_)) => {
                return Err(invalid("[ERROR] files must name at least one file".into()))
            }
            Some(_) => return Err(invalid("[ERROR] files must be a JSON array".into())),
            None => return Err(invalid("[ERROR] missing required field: files".into())),
        };
        let mut wanted = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let id = f
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("[ERROR] files[{i}] needs an id")))?;
            let title = f.get("title").and_then(Value::as_str).map(str::to_string);
            wanted.push((id.to_string(), title));
        }
        // Slack keeps a file without a channel private; the bot always
        // means to share, so the fake insists on one.
        let channel = str_arg(body, "channel_id").ok_or_else(|| Refusal {
            detail: Some(
                "no channel_id: Slack would keep the file private, which the bot never means"
                    .into(),
            ),
            ..invalid("[ERROR] missing required field: channel_id".into())
        })?;
        if is_user_id(channel) {
            return Err(Refusal {
                detail: Some("channel_id takes a channel ID, not a user ID".into()),
                ..Refusal::new("invalid_channel")
            });
        }
        let channel = channel.to_string();
        let thread_ts = str_arg(body, "thread_ts").map(str::to_string);
        if let Some(parent) = &thread_ts {
            let found = self
                .messages
                .iter()
                .find(|m| m.channel == channel && &m.ts == parent);
            match found {
                None => return Err(Refusal::new("thread_not_found")),
                Some(m) if m.thread_ts.as_ref().is_some_and(|t| t != parent) => {
                    return Err(Refusal {
                        detail: Some("thread_ts names a reply; Slack wants its parent's ts".into()),
                        ..Refusal::new("thread_not_found")
                    })
                }
                Some(_) => {}
            }
        }
        // Check every file before sharing any.
        for (id, _) in &wanted {
            let pending = self.pending_files.get(id).ok_or_else(|| Refusal {
                detail: Some(format!(
                    "{id} was never handed out, or was completed already"
                )),
                ..Refusal::new("file_not_found")
            })?;
            let Some(bytes) = &pending.bytes else {
                return Err(Refusal {
                    detail: Some(format!("nothing was uploaded for {id}")),
                    ..Refusal::new("file_not_found")
                });
            };
            if pending.filename.to_ascii_lowercase().ends_with(".png")
                && !bytes.starts_with(PNG_SIGNATURE)
            {
                // Real Slack would share it as a broken image; this
                // documented code stands in so a test sees it at once.
                return Err(Refusal {
                    detail: Some(format!(
                        "{} is named .png but its bytes are not a PNG",
                        pending.filename
                    )),
                    ..Refusal::new("file_type_not_allowed")
                });
            }
        }
        let initial_comment = str_arg(body, "initial_comment").map(str::to_string);
        let mut shared = Vec::new();
        for (id, title) in wanted {
            let pending = self
                .pending_files
                .remove(&id)
                .expect("checked above that it is pending");
            let bytes = pending.bytes.unwrap_or_default();
            let title = title
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| pending.filename.clone());
            let mimetype = if pending.filename.to_ascii_lowercase().ends_with(".png") {
                "image/png"
            } else {
                "application/octet-stream"
            };
            shared.push(json!({
                "id": id,
                "name": pending.filename,
                "title": title,
                "mimetype": mimetype,
                "size": bytes.len(),
            }));
            self.files.push(UploadedFile {
                id,
                channel: channel.clone(),
                thread_ts: thread_ts.clone(),
                filename: pending.filename,
                title,
                alt_text: pending.alt_text,
                initial_comment: initial_comment.clone(),
                bytes,
            });
        }
        Ok(Reply::new(json!({ "ok": true, "files": shared })))
    }
}
