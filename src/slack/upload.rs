//! Files through Slack's external upload flow, the only one Slack still
//! offers (`files.upload` is retired):
//!
//! 1. `files.getUploadURLExternal` (`filename`, `length`, `alt_txt`) answers
//!    an `upload_url` and a `file_id`;
//! 2. the bytes are POSTed to `upload_url` (Slack answers `200 OK - <n>`);
//! 3. `files.completeUploadExternal` (`files=[{id, title}]`, `channel_id`,
//!    `thread_ts`, `initial_comment`) shares the file.
//!
//! Steps 1 and 2 go through slack-morphism's typed methods (step 1 is a GET
//! with query arguments: Slack refuses a JSON body there). Step 3 sends
//! slack-morphism's typed request but keeps Slack's answer as raw JSON: a
//! completed upload must never look failed because a typed model could not
//! read some field, since that would upload the file again.
//!
//! One [`SlackApi::upload_file`] is one logical call with the rules of
//! [`SlackApi::call`]: a 429 waits `Retry-After` and repeats the same step;
//! 5xx answers, timeouts and transport errors back off and start again from
//! step 1 with a fresh URL (Slack discards uploads that are never
//! completed), up to `slack.max_attempts` in all; `ok: false` and other 4xx
//! answers are [`SlackCallError::Refused`]. Every exchange counts in
//! `servo_sla_bot_slack_api_calls_total` under its method (`upload_url` for
//! step 2). Neither the token nor the upload URL is logged.

use super::api::{classify, Again, SlackApi, SlackCallError, Step};
use serde_json::Value;
use slack_morphism::prelude::*;

pub const GET_UPLOAD_URL: &str = "files.getUploadURLExternal";
pub const COMPLETE_UPLOAD: &str = "files.completeUploadExternal";
/// The metric and error label of step 2, which is a URL rather than a method.
pub const UPLOAD_URL: &str = "upload_url";

/// Slack's limit on `alt_txt` (longer is refused with `alt_txt_too_large`).
const ALT_TEXT_MAX_CHARS: usize = 1000;

/// A file to share in a channel, or in a thread of it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileUpload {
    pub channel: String,
    pub thread_ts: Option<String>,
    pub filename: String,
    pub title: String,
    /// What screen readers say for an image (at most 1,000 characters are sent).
    pub alt_text: String,
    /// The message that introduces the file.
    pub initial_comment: Option<String>,
    pub bytes: Vec<u8>,
}

impl FileUpload {
    fn content_type(&self) -> &'static str {
        let lower = self.filename.to_ascii_lowercase();
        if lower.ends_with(".png") {
            "image/png"
        } else {
            "application/octet-stream"
        }
    }
}

impl SlackApi {
    /// Uploads `f` and shares it; Slack's answer to
    /// `files.completeUploadExternal` (`{"ok":true,"files":[…]}`). Called by
    /// the outbox: 429s are waited out inline for a minute in all; past that
    /// the wait is handed back with its `Retry-After` (see
    /// [`SlackApi::deliver`]), and the upload starts over then.
    pub async fn upload_file(&self, f: &FileUpload) -> Result<Value, SlackCallError> {
        let mut failures = 0u32;
        let mut waits = super::api::Waits::upload();
        'attempt: loop {
            let (upload_url, file_id) = loop {
                match self.get_upload_url(f).await {
                    Step::Ok(answer) => break (answer.upload_url, answer.file_id),
                    trouble => {
                        self.again(GET_UPLOAD_URL, trouble, &mut failures, &mut waits)
                            .await?;
                    }
                }
            };
            loop {
                match self.send_bytes(f, &upload_url).await {
                    Step::Ok(()) => break,
                    trouble => match self
                        .again(UPLOAD_URL, trouble, &mut failures, &mut waits)
                        .await?
                    {
                        Again::SameStep => continue,
                        Again::FromScratch => continue 'attempt,
                    },
                }
            }
            loop {
                match self.complete(f, &file_id).await {
                    Step::Ok(answer) => return Ok(answer),
                    trouble => match self
                        .again(COMPLETE_UPLOAD, trouble, &mut failures, &mut waits)
                        .await?
                    {
                        Again::SameStep => continue,
                        Again::FromScratch => continue 'attempt,
                    },
                }
            }
        }
    }

    async fn get_upload_url(
        &self,
        f: &FileUpload,
    ) -> Step<SlackApiFilesGetUploadUrlExternalResponse> {
        let alt: String = f.alt_text.chars().take(ALT_TEXT_MAX_CHARS).collect();
        let req = SlackApiFilesGetUploadUrlExternalRequest::new(f.filename.clone(), f.bytes.len())
            .opt_alt_txt((!alt.is_empty()).then_some(alt));
        let session = self.inner.client.open_session(&self.inner.token);
        let result = tokio::time::timeout(
            self.inner.tuning.timeout,
            session.get_upload_url_external(&req),
        )
        .await;
        self.count(GET_UPLOAD_URL, classify(result))
    }

    async fn send_bytes(&self, f: &FileUpload, url: &SlackFileUploadUrl) -> Step<()> {
        let req = SlackApiFilesUploadViaUrlRequest::new(
            url.clone(),
            f.bytes.clone(),
            f.content_type().to_string(),
        );
        let session = self.inner.client.open_session(&self.inner.token);
        let result = tokio::time::timeout(
            self.inner.tuning.timeout,
            session.files_upload_via_url(&req),
        )
        .await;
        match self.count(UPLOAD_URL, classify(result)) {
            Step::Ok(_) => Step::Ok(()),
            Step::Refused(c) => Step::Refused(c),
            Step::RateLimited(r) => Step::RateLimited(r),
            Step::Failed(w) => Step::Failed(w),
        }
    }

    async fn complete(&self, f: &FileUpload, file_id: &SlackFileId) -> Step<Value> {
        let req =
            SlackApiFilesCompleteUploadExternalRequest::new(vec![SlackApiFilesComplete::new(
                file_id.clone(),
            )
            .with_title(f.title.clone())])
            .with_channel_id(SlackChannelId(f.channel.clone()))
            .opt_thread_ts(f.thread_ts.clone().map(SlackTs))
            .opt_initial_comment(f.initial_comment.clone());
        let session = self.inner.client.open_session(&self.inner.token);
        let call = session
            .http_session_api
            .http_post::<_, Value>(COMPLETE_UPLOAD, &req, None);
        let result = tokio::time::timeout(self.inner.tuning.timeout, call).await;
        self.count(COMPLETE_UPLOAD, classify(result))
    }

    fn count<T>(&self, method: &str, (step, label): (Step<T>, String)) -> Step<T> {
        super::api::count(&self.inner.metrics, method, &label, &step);
        step
    }
}
