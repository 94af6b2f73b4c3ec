//! Block Kit rules: the limits that make real Slack answer `invalid_blocks`
//! (or `invalid_arguments` for a view), reported as Slack reports them.

use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt::Display;

pub(super) const MESSAGE_MAX_BLOCKS: usize = 50;
const MODAL_MAX_BLOCKS: usize = 100;

const BLOCK_TYPES: &[&str] = &[
    "section",
    "header",
    "divider",
    "actions",
    "context",
    "image",
    "input",
    "rich_text",
    "markdown",
];

/// The select menus, each in its single and multi form.
const SELECT_MENUS: &[&str] = &[
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
];

/// Elements an actions block takes, besides the select menus.
const ACTIONS_ELEMENTS: &[&str] = &[
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "workflow_button",
];

/// Elements an input block takes, besides the select menus.
const INPUT_ELEMENTS: &[&str] = &[
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "file_input",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "url_text_input",
];

/// Elements a section's accessory may be, besides the select menus.
const ACCESSORY_ELEMENTS: &[&str] = &[
    "button",
    "checkboxes",
    "datepicker",
    "image",
    "overflow",
    "radio_buttons",
    "timepicker",
    "workflow_button",
];

/// Where an element sits: each takes its own set of element types.
#[derive(Clone, Copy)]
enum Place {
    Actions,
    Input,
    Accessory,
}

impl Place {
    fn allows(self, kind: &str) -> bool {
        let own = match self {
            Place::Actions => ACTIONS_ELEMENTS,
            Place::Input => INPUT_ELEMENTS,
            Place::Accessory => ACCESSORY_ELEMENTS,
        };
        own.contains(&kind) || SELECT_MENUS.contains(&kind)
    }

    fn name(self) -> &'static str {
        match self {
            Place::Actions => "an actions block",
            Place::Input => "an input block",
            Place::Accessory => "a section accessory",
        }
    }
}

/// Block Kit validation, collecting every violation in Slack's message
/// format so a test failure names the offending JSON pointer.
#[derive(Default)]
pub(super) struct Check {
    pub(super) errors: Vec<String>,
}

impl Check {
    fn fail(&mut self, pointer: &str, what: impl Display) {
        self.errors
            .push(format!("[ERROR] {what} [json-pointer:{pointer}]"));
    }

    fn string(&mut self, value: Option<&Value>, at: &str, min: usize, max: usize) {
        match value {
            None => self.fail(at, "is required"),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min {
                    self.fail(at, format!("must be more than {} characters", min - 1));
                } else if n > max {
                    self.fail(
                        at,
                        format!("must be less than {} characters, got {n}", max + 1),
                    );
                }
            }
            Some(_) => self.fail(at, "must be a string"),
        }
    }

    fn optional_string(&mut self, value: Option<&Value>, at: &str, max: usize) {
        if value.is_some() {
            self.string(value, at, 0, max);
        }
    }

    /// A text object: `plain_text` (or `mrkdwn` where allowed) with 1..=max chars.
    fn text(&mut self, value: Option<&Value>, at: &str, max: usize, plain_only: bool) {
        let Some(value) = value else {
            self.fail(at, "is required");
            return;
        };
        let Some(obj) = value.as_object() else {
            self.fail(at, "must be a text object");
            return;
        };
        let type_at = format!("{at}/type");
        match obj.get("type").and_then(Value::as_str) {
            Some("plain_text") => {}
            Some("mrkdwn") if !plain_only => {}
            Some(other) if plain_only => {
                self.fail(&type_at, format!("must be plain_text, got {other:?}"))
            }
            Some(other) => self.fail(
                &type_at,
                format!("must be plain_text or mrkdwn, got {other:?}"),
            ),
            None => self.fail(&type_at, "is required"),
        }
        self.string(obj.get("text"), &format!("{at}/text"), 1, max);
    }

    fn style(&mut self, value: Option<&Value>, at: &str) {
        if let Some(style) = value {
            if !matches!(style.as_str(), Some("primary" | "danger")) {
                self.fail(at, format!("must be primary or danger, got {style}"));
            }
        }
    }

    pub(super) fn blocks(&mut self, blocks: &Value, at: &str, max_blocks: usize) {
        let Some(list) = blocks.as_array() else {
            self.fail(at, "must be an array");
            return;
        };
        if list.len() > max_blocks {
            self.fail(
                at,
                format!(
                    "must have no more than {max_blocks} items, got {}",
                    list.len()
                ),
            );
        }
        let mut block_ids = HashSet::new();
        for (i, block) in list.iter().enumerate() {
            self.block(block, &format!("{at}/{i}"), &mut block_ids);
        }
    }

    fn block(&mut self, block: &Value, at: &str, block_ids: &mut HashSet<String>) {
        let Some(obj) = block.as_object() else {
            self.fail(at, "must be an object");
            return;
        };
        if let Some(id) = obj.get("block_id") {
            let id_at = format!("{at}/block_id");
            self.string(Some(id), &id_at, 0, 255);
            if let Some(id) = id.as_str() {
                if !block_ids.insert(id.to_string()) {
                    self.fail(&id_at, format!("duplicate block_id {id:?} in this message"));
                }
            }
        }
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            self.fail(&format!("{at}/type"), "is required");
            return;
        };
        if !BLOCK_TYPES.contains(&kind) {
            self.fail(
                &format!("{at}/type"),
                format!("unknown block type {kind:?}"),
            );
            return;
        }
        // Slack's rule for action_id is uniqueness within the containing
        // block, so the same action may appear in several blocks.
        let mut action_ids = HashSet::new();
        match kind {
            "section" => {
                let text = obj.get("text");
                let fields = obj.get("fields");
                if text.is_none() && fields.is_none() {
                    self.fail(at, "a section needs text or fields");
                }
                if text.is_some() {
                    self.text(text, &format!("{at}/text"), 3000, false);
                }
                if let Some(fields) = fields {
                    let fields_at = format!("{at}/fields");
                    match fields.as_array() {
                        Some(list) => {
                            if list.len() > 10 {
                                self.fail(
                                    &fields_at,
                                    format!("must have no more than 10 items, got {}", list.len()),
                                );
                            }
                            for (j, field) in list.iter().enumerate() {
                                self.text(Some(field), &format!("{fields_at}/{j}"), 2000, false);
                            }
                        }
                        None => self.fail(&fields_at, "must be an array"),
                    }
                }
                if let Some(accessory) = obj.get("accessory") {
                    self.element(
                        accessory,
                        &format!("{at}/accessory"),
                        Place::Accessory,
                        &mut action_ids,
                    );
                }
            }
            "header" => self.text(obj.get("text"), &format!("{at}/text"), 150, true),
            "actions" => {
                if let Some(elements) = self.elements(obj.get("elements"), at, 25) {
                    for (j, el) in elements.iter().enumerate() {
                        self.element(
                            el,
                            &format!("{at}/elements/{j}"),
                            Place::Actions,
                            &mut action_ids,
                        );
                    }
                }
            }
            "context" => {
                self.elements(obj.get("elements"), at, 10);
            }
            "input" => match obj.get("element") {
                Some(el) => {
                    self.element(el, &format!("{at}/element"), Place::Input, &mut action_ids)
                }
                None => self.fail(&format!("{at}/element"), "is required"),
            },
            _ => {}
        }
    }

    fn elements<'v>(
        &mut self,
        value: Option<&'v Value>,
        at: &str,
        max: usize,
    ) -> Option<&'v [Value]> {
        let at = format!("{at}/elements");
        let Some(value) = value else {
            self.fail(&at, "is required");
            return None;
        };
        let Some(list) = value.as_array() else {
            self.fail(&at, "must be an array");
            return None;
        };
        if list.len() > max {
            self.fail(
                &at,
                format!("must have no more than {max} items, got {}", list.len()),
            );
        }
        Some(list)
    }

    fn element(&mut self, el: &Value, at: &str, place: Place, action_ids: &mut HashSet<String>) {
        let Some(obj) = el.as_object() else {
            self.fail(at, "must be an object");
            return;
        };
        if let Some(id) = obj.get("action_id") {
            let id_at = format!("{at}/action_id");
            self.string(Some(id), &id_at, 0, 255);
            if let Some(id) = id.as_str() {
                if !action_ids.insert(id.to_string()) {
                    self.fail(&id_at, format!("duplicate action_id {id:?} in this block"));
                }
            }
        }
        let type_at = format!("{at}/type");
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            self.fail(&type_at, "is required");
            return;
        };
        if !place.allows(kind) {
            self.fail(
                &type_at,
                format!("{kind:?} is not a valid element in {}", place.name()),
            );
            return;
        }
        match kind {
            "button" => {
                self.text(obj.get("text"), &format!("{at}/text"), 75, true);
                self.optional_string(obj.get("value"), &format!("{at}/value"), 2000);
                self.optional_string(obj.get("url"), &format!("{at}/url"), 3000);
                self.style(obj.get("style"), &format!("{at}/style"));
            }
            // Secondary actions: 2 to 5 plain-text options.
            "overflow" => self.options(obj, at, 2, 5, true),
            // Their option texts may be mrkdwn, unlike a menu's.
            "radio_buttons" | "checkboxes" => self.options(obj, at, 1, 10, false),
            "static_select" | "multi_static_select" if obj.contains_key("options") => {
                self.options(obj, at, 1, 100, true)
            }
            "datetimepicker" => {
                // UNIX seconds, a JSON integer of at most 10 digits.
                if let Some(initial) = obj.get("initial_date_time") {
                    if initial.as_u64().is_none_or(|secs| secs > 9_999_999_999) {
                        self.fail(
                            &format!("{at}/initial_date_time"),
                            format!("must be an integer of UNIX seconds, got {initial}"),
                        );
                    }
                }
            }
            _ => {}
        }
        if let Some(confirm) = obj.get("confirm") {
            self.confirm(confirm, &format!("{at}/confirm"));
        }
    }

    /// An element's `options` (`min..=max` of them) and any `initial_option`
    /// or `initial_options`, which must each be one of them.
    fn options(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        min: usize,
        max: usize,
        plain_only: bool,
    ) {
        let options_at = format!("{at}/options");
        let Some(value) = obj.get("options") else {
            self.fail(&options_at, "is required");
            return;
        };
        let Some(options) = value.as_array() else {
            self.fail(&options_at, "must be an array");
            return;
        };
        if !(min..=max).contains(&options.len()) {
            self.fail(
                &options_at,
                format!(
                    "must have between {min} and {max} items, got {}",
                    options.len()
                ),
            );
        }
        for (i, option) in options.iter().enumerate() {
            self.option(option, &format!("{options_at}/{i}"), plain_only);
        }
        let same = |a: &Value, b: &Value| {
            a.get("value") == b.get("value") && a.get("text") == b.get("text")
        };
        let initial_at = format!("{at}/initial_option");
        if let Some(initial) = obj.get("initial_option") {
            if !options.iter().any(|o| same(o, initial)) {
                self.fail(&initial_at, "must exactly match one of the options");
            }
        }
        if let Some(initial) = obj.get("initial_options") {
            match initial.as_array() {
                Some(list) => {
                    for (i, chosen) in list.iter().enumerate() {
                        if !options.iter().any(|o| same(o, chosen)) {
                            self.fail(
                                &format!("{at}/initial_options/{i}"),
                                "must exactly match one of the options",
                            );
                        }
                    }
                }
                None => self.fail(&format!("{at}/initial_options"), "must be an array"),
            }
        }
    }

    /// An option object: its text and description 75 characters at most,
    /// its value 150.
    fn option(&mut self, option: &Value, at: &str, plain_only: bool) {
        let Some(obj) = option.as_object() else {
            self.fail(at, "must be an option object");
            return;
        };
        self.text(obj.get("text"), &format!("{at}/text"), 75, plain_only);
        self.string(obj.get("value"), &format!("{at}/value"), 1, 150);
        if obj.contains_key("description") {
            self.text(
                obj.get("description"),
                &format!("{at}/description"),
                75,
                plain_only,
            );
        }
        self.optional_string(obj.get("url"), &format!("{at}/url"), 3000);
    }

    fn confirm(&mut self, confirm: &Value, at: &str) {
        let Some(obj) = confirm.as_object() else {
            self.fail(at, "must be a confirmation dialog object");
            return;
        };
        // Only the body text may be mrkdwn.
        for (key, max, plain_only) in [
            ("title", 100, true),
            ("text", 300, false),
            ("confirm", 30, true),
            ("deny", 30, true),
        ] {
            self.text(obj.get(key), &format!("{at}/{key}"), max, plain_only);
        }
        self.style(obj.get("style"), &format!("{at}/style"));
    }

    /// What every view must be: an object of `kind`, with its ids and
    /// metadata within their lengths. The object, to check the rest of.
    fn view<'v>(
        &mut self,
        view: &'v Value,
        at: &str,
        kind: &str,
    ) -> Option<&'v serde_json::Map<String, Value>> {
        let Some(obj) = view.as_object() else {
            self.fail(at, "must be a view object");
            return None;
        };
        if obj.get("type").and_then(Value::as_str) != Some(kind) {
            self.fail(
                &format!("{at}/type"),
                format!("this method takes a view of type {kind}"),
            );
        }
        self.optional_string(obj.get("callback_id"), &format!("{at}/callback_id"), 255);
        self.optional_string(obj.get("external_id"), &format!("{at}/external_id"), 255);
        self.optional_string(
            obj.get("private_metadata"),
            &format!("{at}/private_metadata"),
            3000,
        );
        Some(obj)
    }

    pub(super) fn modal(&mut self, view: &Value, at: &str) {
        let Some(obj) = self.view(view, at, "modal") else {
            return;
        };
        self.text(obj.get("title"), &format!("{at}/title"), 24, true);
        for key in ["submit", "close"] {
            if obj.contains_key(key) {
                self.text(obj.get(key), &format!("{at}/{key}"), 24, true);
            }
        }
        match obj.get("blocks") {
            Some(blocks) => {
                self.blocks(blocks, &format!("{at}/blocks"), MODAL_MAX_BLOCKS);
                let has_input = blocks.as_array().is_some_and(|list| {
                    list.iter()
                        .any(|b| b.get("type").and_then(Value::as_str) == Some("input"))
                });
                if has_input && !obj.contains_key("submit") {
                    self.fail(at, "must provide a submit property when using input blocks");
                }
            }
            None => self.fail(&format!("{at}/blocks"), "is required"),
        }
    }

    /// An App Home view: type `home`, up to 100 blocks; no title, submit or close.
    pub(super) fn home(&mut self, view: &Value, at: &str) {
        let Some(obj) = self.view(view, at, "home") else {
            return;
        };
        for key in ["submit", "close", "title"] {
            if obj.contains_key(key) {
                self.fail(&format!("{at}/{key}"), "is not allowed in a home view");
            }
        }
        match obj.get("blocks") {
            Some(blocks) => self.blocks(blocks, &format!("{at}/blocks"), MODAL_MAX_BLOCKS),
            None => self.fail(&format!("{at}/blocks"), "is required"),
        }
    }
}
