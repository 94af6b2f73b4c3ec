//! `/backfill` subcommands: one file each with its `run` ([`status`], `list`,
//! `change` for pause and resume, `extend`, [`review`], [`help`]), dispatched
//! by [`Command`] through [`jobs`], which resolves the tenant and holds the
//! answers they share. Parsing happens here, once, into typed values
//! ([`grammar`]); an unknown subcommand answers with the help text.

mod answers;
mod change;
mod extend;
pub mod grammar;
pub mod help;
pub mod impact;
mod incident;
pub mod jobs;
mod list;
pub mod lookup;
pub mod oncall;
pub mod quiet;
pub mod review;
pub mod status;
pub mod tenancy;

use crate::context::AppState;
use crate::domain::deadline::DeadlineSpec;
use crate::domain::job_id::JobRef;
use grammar::ListFilter;
use serde::Deserialize;
use serde_json::{json, Value};

/// The form Slack posts for a slash command (`slack.md`).
#[derive(Clone, Debug, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    pub channel_id: String,
    #[serde(default)]
    pub channel_name: String,
    #[serde(default)]
    pub team_id: String,
    #[serde(default)]
    pub response_url: String,
    #[serde(default)]
    pub trigger_id: String,
    #[serde(default)]
    pub api_app_id: String,
}

/// A slash command's form as posted, read in place: each field is the
/// body's bytes until it is asked for, then decoded as `serde_urlencoded`
/// would (`+` a space, `%XX` a byte, invalid UTF-8 replaced). The answers
/// given at once (help, a kept status card) need `text`, `user_id` and
/// `channel_id` only; the rest become a [`SlashCommand`] with
/// [`SlashForm::to_command`]. The same form is refused as by deriving
/// `Deserialize`: a field given twice, or `command`, `user_id` or
/// `channel_id` missing.
pub struct SlashForm<'a> {
    fields: [Option<&'a [u8]>; FORM_FIELDS.len()],
}

/// [`SlashCommand`]'s fields, in the order of [`SlashForm`]'s.
const FORM_FIELDS: [&str; 10] = [
    "command",
    "text",
    "user_id",
    "user_name",
    "channel_id",
    "channel_name",
    "team_id",
    "response_url",
    "trigger_id",
    "api_app_id",
];
const REQUIRED_FIELDS: [usize; 3] = [0, 2, 4];

/// A form value or name decoded: borrowed when there is nothing to decode.
fn form_decode(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    if !raw.iter().any(|b| matches!(b, b'+' | b'%')) {
        return String::from_utf8_lossy(raw);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(i + 1).and_then(|b| hex(*b)),
                raw.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s.into(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
    }
}

impl<'a> SlashForm<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, String> {
        let mut fields = [None; FORM_FIELDS.len()];
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = form_decode(name);
            let Some(i) = FORM_FIELDS.iter().position(|f| *f == name) else {
                continue; // as serde does with a field it does not know
            };
            if fields[i].replace(value).is_some() {
                return Err(format!("duplicate field `{}`", FORM_FIELDS[i]));
            }
        }
        if let Some(i) = REQUIRED_FIELDS.iter().find(|i| fields[**i].is_none()) {
            return Err(format!("missing field `{}`", FORM_FIELDS[*i]));
        }
        Ok(Self { fields })
    }

    fn field(&self, i: usize) -> std::borrow::Cow<'a, str> {
        self.fields[i].map(form_decode).unwrap_or_default()
    }

    pub fn text(&self) -> std::borrow::Cow<'a, str> {
        self.field(1)
    }

    pub fn user_id(&self) -> std::borrow::Cow<'a, str> {
        self.field(2)
    }

    pub fn channel_id(&self) -> std::borrow::Cow<'a, str> {
        self.field(4)
    }

    /// Every field, owned: for a command that runs on.
    pub fn to_command(&self) -> SlashCommand {
        let f = |i| self.field(i).into_owned();
        SlashCommand {
            command: f(0),
            text: f(1),
            user_id: f(2),
            user_name: f(3),
            channel_id: f(4),
            channel_name: f(5),
            team_id: f(6),
            response_url: f(7),
            trigger_id: f(8),
            api_app_id: f(9),
        }
    }
}

/// A parsed `/backfill` subcommand.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    /// `/backfill` alone: the at-risk list in a tenant's channel, help elsewhere.
    Overview,
    Status(JobRef),
    /// `/backfill impact <job>`: downstream tree and upstream jobs (issue 37).
    Impact(JobRef),
    List(ListFilter),
    /// `/backfill review [7d|30d]`: the SLA review over that many days.
    Review(u32),
    Pause(JobRef),
    Resume(JobRef),
    ExtendDeadline {
        job: JobRef,
        deadline: DeadlineSpec,
        reason: Option<String>,
    },
    /// `/backfill silence …` (issue 35).
    Silence(quiet::SilenceArgs),
    /// `/backfill silences`: the silences in force.
    Silences,
    /// `/backfill unsilence <id>`.
    Unsilence(String),
    /// `/backfill maintenance …`.
    Maintenance(quiet::MaintenanceArgs),
    /// `/backfill oncall …` (issue 36).
    OnCall(oncall::OnCallArgs),
    /// `/backfill incident <job>`: the job's alert gets its incident
    /// channel (issue 38); `link: true` (`incident link <job>`) makes the
    /// channel the command runs in that channel.
    Incident {
        job: JobRef,
        link: bool,
    },
    /// A known subcommand typed wrong: what is wrong and an example.
    Invalid(String),
    /// Anything we do not know: answered with usage, naming what was typed.
    Unknown(String),
}

/// A command and the tenant the user picked with `--tenant`, if any.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    pub command: Command,
    pub tenant: Option<String>,
}

/// Takes `--tenant ID` (or `--tenant=ID`) out of the words, wherever it is.
fn take_tenant(words: &mut Vec<&str>) -> Result<Option<String>, String> {
    let mut tenant = None;
    let mut i = 0;
    while i < words.len() {
        if let Some(v) = words[i].strip_prefix("--tenant=") {
            tenant = Some(v.to_string());
            words.remove(i);
        } else if words[i] == "--tenant" {
            words.remove(i);
            if i >= words.len() {
                return Err("`--tenant` needs a tenant id, e.g. `--tenant acme`.".into());
            }
            tenant = Some(words.remove(i).to_string());
        } else {
            i += 1;
        }
    }
    Ok(tenant.filter(|t| !t.is_empty()))
}

impl Command {
    pub fn parse(text: &str) -> Parsed {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let tenant = match take_tenant(&mut words) {
            Ok(t) => t,
            Err(e) => {
                return Parsed {
                    command: Command::Invalid(e),
                    tenant: None,
                }
            }
        };
        let command = Self::parse_words(&words);
        Parsed { command, tenant }
    }

    fn parse_words(words: &[&str]) -> Command {
        let Some(sub) = words.first() else {
            return Command::Overview;
        };
        let args = &words[1..];
        let job_arg = |usage: &str| -> Result<JobRef, Command> {
            match args.first() {
                None => Err(Command::Invalid(format!(
                    "Which job? Usage: `{usage}`. A job is its id, the first 8 characters of it, or its asset's name."
                ))),
                Some(id) => JobRef::parse(id).map_err(Command::Invalid),
            }
        };
        let lower = sub.to_ascii_lowercase();
        let result = match lower.as_str() {
            "help" | "-h" | "--help" => Ok(Command::Help),
            "status" => job_arg("/backfill status <job_id>").map(Command::Status),
            "impact" => job_arg("/backfill impact <job_id>").map(Command::Impact),
            "pause" => job_arg("/backfill pause <job_id>").map(Command::Pause),
            "resume" => job_arg("/backfill resume <job_id>").map(Command::Resume),
            "list" => match args {
                [] | [_] => ListFilter::parse(args.first().copied())
                    .map(Command::List)
                    .map_err(Command::Invalid),
                _ => Err(Command::Invalid(
                    "`/backfill list` takes one filter: `running`, `paused`, `at-risk` or `all`."
                        .into(),
                )),
            },
            "review" => match args {
                [] => Ok(Command::Review(7)),
                [p] if p.eq_ignore_ascii_case("7d") => Ok(Command::Review(7)),
                [p] if p.eq_ignore_ascii_case("30d") => Ok(Command::Review(30)),
                _ => Err(Command::Invalid(
                    "`/backfill review` covers `7d` (the default) or `30d`, e.g. `/backfill review 30d`."
                        .into(),
                )),
            },
            "silence" => quiet::parse_silence(args)
                .map(Command::Silence)
                .map_err(Command::Invalid),
            "silences" => Ok(Command::Silences),
            "oncall" | "on-call" => oncall::parse(args)
                .map(Command::OnCall)
                .map_err(Command::Invalid),
            "incident" => {
                let usage = "Usage: `/backfill incident <job>` opens the job's incident channel; `/backfill incident link <job>`, run in a channel, links that channel instead.";
                let (link, rest) = match args {
                    [l, rest @ ..] if l.eq_ignore_ascii_case("link") => (true, rest),
                    _ => (false, args),
                };
                match rest {
                    [job] => JobRef::parse(job)
                        .map(|job| Command::Incident { job, link })
                        .map_err(Command::Invalid),
                    [] => Err(Command::Invalid(format!("Which job? {usage}"))),
                    _ => Err(Command::Invalid(usage.into())),
                }
            }
            "maintenance" => quiet::parse_maintenance(args)
                .map(Command::Maintenance)
                .map_err(Command::Invalid),
            "unsilence" => match args {
                [id] => Ok(Command::Unsilence(id.to_string())),
                _ => Err(Command::Invalid(
                    "Which silence? Usage: `/backfill unsilence <id>`; `/backfill silences` lists them with their ids.".into(),
                )),
            },
            "extend-deadline" | "extend_deadline" | "extend" => {
                let usage = "/backfill extend-deadline <job_id> <deadline> [reason...]";
                match job_arg(usage) {
                    Err(e) => Err(e),
                    Ok(job) => match args.get(1) {
                        None => Err(Command::Invalid(format!(
                            "What new deadline? Usage: `{usage}`. {}",
                            crate::domain::deadline::DEADLINE_EXAMPLES
                        ))),
                        Some(d) => match DeadlineSpec::parse(d) {
                            Err(e) => Err(Command::Invalid(e)),
                            Ok(deadline) => {
                                let reason = args[2..].join(" ");
                                Ok(Command::ExtendDeadline {
                                    job,
                                    deadline,
                                    reason: (!reason.is_empty()).then_some(reason),
                                })
                            }
                        },
                    },
                }
            }
            _ => Ok(Command::Unknown(crate::domain::job_id::short(sub))),
        };
        result.unwrap_or_else(|e| e)
    }
}

/// An ephemeral answer: only the user sees it.
pub fn ephemeral(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": text })
}

/// Runs a parsed command and returns the immediate answer (the HTTP body).
pub async fn run(state: &AppState, parsed: Parsed, cmd: &SlashCommand) -> Value {
    match parsed.command {
        Command::Help => help::run(state, None),
        Command::Overview => {
            let ours = state.config.tenants.iter().any(|t| {
                t.channel.as_str() == cmd.channel_id
                    || t.incident_channels
                        .iter()
                        .any(|c| c.as_str() == cmd.channel_id)
            });
            let ours = ours
                || matches!(
                    state
                        .store
                        .incident_channel_by_slack_id(&cmd.channel_id)
                        .await,
                    Ok(Some(_))
                );
            if ours {
                let list = Command::List(ListFilter::AtRisk);
                jobs::run(state, list, parsed.tenant.as_deref(), cmd).await
            } else {
                help::run(state, None)
            }
        }
        Command::Unknown(word) => help::run(state, Some(&word)),
        // `why` quotes what was typed (and usage like `<job_id>`): escape
        // it so user text cannot become a mention or a link (slack.md).
        Command::Invalid(why) => ephemeral(&format!(
            ":warning: {}",
            crate::domain::text::escape_slack(&why)
        )),
        // `/backfill oncall acme`: anyone who belongs to acme may ask.
        Command::OnCall(oncall::OnCallArgs::Who(Some(t))) => match parsed.tenant.as_deref() {
            Some(flag) if flag != t => ephemeral(&format!(
                ":warning: Two tenants were named, `{}` and `--tenant {}`: name one.",
                crate::domain::text::escape_slack(&t),
                crate::domain::text::escape_slack(flag)
            )),
            _ => oncall::who_for(state, &t, cmd).await,
        },
        other => jobs::run(state, other, parsed.tenant.as_deref(), cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7f3c2a9e-0b1d-4c55-9a7e-2d6f1e8b4c10";

    #[test]
    fn a_form_read_in_place_is_what_serde_reads() {
        let bodies: [&[u8]; 9] = [
            b"command=%2Fbackfill&text=status+7f3c2a9e&user_id=U1&channel_id=C1&response_url=https%3A%2F%2Fhooks.slack.com%2Fx",
            b"command=/backfill&text=help&user_id=U1&channel_id=C1",
            b"token=x&team_id=T1&team_domain=d&channel_id=C1&channel_name=a+b&user_id=U1&user_name=n&command=%2Fb&text=&api_app_id=A1&trigger_id=1.2&response_url=u&extra=1",
            b"&&command=c&&user_id=%55%31&channel_id=C1&text=%E2%9C%85+done+100%25&",
            b"command=c&user_id=U&channel_id=C&text=%zz%4&user_name=%FF%FE",
            b"command=c&user_id=U&channel_id=C&t%65xt=spelled",
            b"command=c&user_id=U&channel_id",
            b"command=c&user_id=U&channel_id=C&text=a&text=b",
            b"this is not a form with fields",
        ];
        for body in bodies {
            let ours = SlashForm::parse(body).map(|f| f.to_command());
            let serde: Result<SlashCommand, _> = serde_urlencoded::from_bytes(body);
            match (ours, serde) {
                (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
                (Err(a), Err(b)) => assert_eq!(a, b.to_string()),
                (a, b) => panic!("{}: ours {a:?}, serde {b:?}", String::from_utf8_lossy(body)),
            }
        }
        let f = SlashForm::parse(b"command=c&text=help&user_id=U1&channel_id=C1").unwrap();
        assert!(matches!(f.text(), std::borrow::Cow::Borrowed("help")));
        assert_eq!((&*f.user_id(), &*f.channel_id()), ("U1", "C1"));
    }

    fn cmd(text: &str) -> Command {
        Command::parse(text).command
    }

    #[test]
    fn an_empty_command_is_the_overview_and_help_means_help() {
        assert_eq!(cmd(""), Command::Overview);
        assert_eq!(cmd("   "), Command::Overview);
        assert_eq!(cmd("help"), Command::Help);
        assert_eq!(cmd("HELP me"), Command::Help);
    }

    #[test]
    fn anything_else_is_unknown_and_named() {
        assert_eq!(cmd("frobnicate 123"), Command::Unknown("frobnicate".into()));
    }

    #[test]
    fn job_commands_take_a_job_id_a_prefix_or_an_asset_name() {
        let id = JobRef::Id(crate::domain::job_id::JobId::parse(ID).unwrap());
        assert_eq!(cmd(&format!("status {ID}")), Command::Status(id.clone()));
        assert_eq!(cmd(&format!("PAUSE {ID}")), Command::Pause(id.clone()));
        assert_eq!(cmd(&format!("resume `{ID}`")), Command::Resume(id));
        assert!(matches!(cmd("status"), Command::Invalid(e) if e.contains("Which job")));
        assert_eq!(
            cmd("pause `7f3c2a9e`"),
            Command::Pause(JobRef::Named("7f3c2a9e".into()))
        );
        assert_eq!(
            cmd("status orders_daily"),
            Command::Status(JobRef::Named("orders_daily".into()))
        );
    }

    #[test]
    fn list_takes_an_optional_filter() {
        assert_eq!(cmd("list"), Command::List(ListFilter::All));
        assert_eq!(cmd("review"), Command::Review(7));
        assert_eq!(cmd("REVIEW 30d"), Command::Review(30));
        assert_eq!(cmd("review 7D"), Command::Review(7));
        assert!(matches!(cmd("review 14d"), Command::Invalid(e) if e.contains("30d")));
        assert!(matches!(cmd("review 7d extra"), Command::Invalid(_)));
        assert_eq!(cmd("list at-risk"), Command::List(ListFilter::AtRisk));
        assert!(matches!(cmd("list soon"), Command::Invalid(_)));
        assert!(matches!(cmd("list running paused"), Command::Invalid(_)));
    }

    #[test]
    fn extend_deadline_takes_a_job_a_deadline_and_a_reason() {
        let parsed = cmd(&format!("extend-deadline {ID} +4h upstream vendor outage"));
        assert_eq!(
            parsed,
            Command::ExtendDeadline {
                job: JobRef::Id(crate::domain::job_id::JobId::parse(ID).unwrap()),
                deadline: DeadlineSpec::Step(chrono::Duration::hours(4)),
                reason: Some("upstream vendor outage".into()),
            }
        );
        assert!(matches!(
            cmd(&format!("extend-deadline {ID}")),
            Command::Invalid(e) if e.contains("What new deadline")
        ));
        assert!(matches!(
            cmd(&format!("extend-deadline {ID} soon")),
            Command::Invalid(e) if e.contains("+4h")
        ));
        assert!(matches!(
            cmd(&format!("extend-deadline {ID} +4h")),
            Command::ExtendDeadline { reason: None, .. }
        ));
    }

    #[test]
    fn incident_takes_a_job_and_link_takes_one_too() {
        let id = JobRef::Id(crate::domain::job_id::JobId::parse(ID).unwrap());
        assert_eq!(
            cmd(&format!("incident {ID}")),
            Command::Incident {
                job: id.clone(),
                link: false
            }
        );
        assert_eq!(
            cmd(&format!("incident LINK {ID}")),
            Command::Incident {
                job: id,
                link: true
            }
        );
        assert!(matches!(cmd("incident"), Command::Invalid(e) if e.contains("Which job")));
        assert!(matches!(cmd("incident link"), Command::Invalid(e) if e.contains("Which job")));
        assert!(matches!(cmd("incident a b"), Command::Invalid(e) if e.contains("Usage")));
    }

    #[test]
    fn the_tenant_flag_can_stand_anywhere() {
        let p = Command::parse(&format!("--tenant globex status {ID}"));
        assert_eq!(p.tenant.as_deref(), Some("globex"));
        assert!(matches!(p.command, Command::Status(_)));
        let p = Command::parse("list --tenant=acme at-risk");
        assert_eq!(p.tenant.as_deref(), Some("acme"));
        assert_eq!(p.command, Command::List(ListFilter::AtRisk));
        assert!(matches!(
            Command::parse("list --tenant").command,
            Command::Invalid(_)
        ));
    }
}
