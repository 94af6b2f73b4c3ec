//! Slack's message limits, kept by construction: whatever Servo or a person
//! put into a message, it is cut to fit rather than refused with
//! `invalid_blocks` (`slack.md`, "Block Kit limits").
//!
//! Pure functions, no I/O:
//! - [`escape`] Slack's `& < >` in text that did not come from the bot;
//! - [`truncate`] text to a number of characters without breaking Slack
//!   markup (`<@U123>`, `<!date^…|…>`, `<https://…|label>`, `&amp;`, code);
//! - [`join_capped`] a list into a bounded string ending "…and N more";
//! - [`fit_message`] a whole Web API payload (message, response_url answer,
//!   `views.*` view or modal answer) to Block Kit's limits.
//!
//! Lengths are counted in Unicode scalar values (`chars`), as Slack counts.
//!
//! What is deliberately left alone, because cutting it would change its
//! meaning rather than its presentation: button and option `value`s (ids the
//! bot reads back; a value over 2,000 characters is a bug to fix where it is
//! made), `url`s, `action_id`s and `block_id`s (duplicates included),
//! `private_metadata` and `callback_id`.

use serde_json::{json, Map, Value};

/// Top-level `text` of a message.
pub const MAX_TEXT: usize = 40_000;
/// Blocks in a message, attachments' blocks included.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
/// Blocks in a modal or App Home view.
pub const MAX_VIEW_BLOCKS: usize = 100;
/// A section's `text`.
pub const MAX_SECTION_TEXT: usize = 3_000;
/// A section's `fields`.
pub const MAX_SECTION_FIELDS: usize = 10;
/// Each of a section's `fields`.
pub const MAX_FIELD_TEXT: usize = 2_000;
/// A header's (plain) text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Elements of a context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Each text element of a context block.
pub const MAX_CONTEXT_TEXT: usize = 3_000;
/// Elements of an actions block.
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
/// A button's text.
pub const MAX_BUTTON_TEXT: usize = 75;
/// An option's (overflow, select) text and description, an option group's label.
pub const MAX_OPTION_TEXT: usize = 75;
/// Options of an overflow menu.
pub const MAX_OVERFLOW_OPTIONS: usize = 5;
/// Options (or option groups, or options in a group) of a select menu.
pub const MAX_SELECT_OPTIONS: usize = 100;
/// A select's or input's placeholder.
pub const MAX_PLACEHOLDER: usize = 150;
/// A `confirm` dialog's title.
pub const MAX_CONFIRM_TITLE: usize = 100;
/// A `confirm` dialog's text.
pub const MAX_CONFIRM_TEXT: usize = 300;
/// A `confirm` dialog's confirm and deny buttons.
pub const MAX_CONFIRM_BUTTON: usize = 30;
/// An input block's label and hint.
pub const MAX_LABEL_TEXT: usize = 2_000;
/// An image's `alt_text` and title.
pub const MAX_ALT_TEXT: usize = 2_000;
/// A modal's title, submit and close texts.
pub const MAX_VIEW_TITLE: usize = 24;

const ELLIPSIS: char = '…';

// ---------------------------------------------------------------------------
// truncate

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// One ordinary character: a cut may fall before it.
    Char,
    /// `<…>`: a mention, channel, date token or link, cut whole or not at all.
    Tag,
    /// `&amp;`, `&lt;`, `&gt;` (or any `&name;`), cut whole or not at all.
    Entity,
    /// A `<` with no `>` after it: nothing from it on can be kept.
    Dangling,
    /// Three backticks: opens or closes a preformatted block.
    Fence,
    /// One backtick: opens or closes inline code.
    Tick,
}

#[derive(Clone, Copy, Debug)]
struct Atom {
    start: usize,
    end: usize,
    kind: Kind,
}

/// The length of the entity `&name;` at the start of `s`, if there is one.
fn entity_len(s: &[char]) -> Option<usize> {
    const MAX_NAME: usize = 10;
    let name = s
        .iter()
        .skip(1)
        .take(MAX_NAME + 1)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '#')
        .count();
    ((1..=MAX_NAME).contains(&name) && s.get(1 + name) == Some(&';')).then_some(name + 2)
}

/// `chars` as the pieces a cut may fall between.
fn atoms(chars: &[char]) -> Vec<Atom> {
    let n = chars.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let (kind, len) = match chars[i] {
            '<' => match chars[i + 1..].iter().position(|c| *c == '>') {
                Some(j) => (Kind::Tag, j + 2),
                None => (Kind::Dangling, n - i),
            },
            '&' => match entity_len(&chars[i..]) {
                Some(len) => (Kind::Entity, len),
                None => (Kind::Char, 1),
            },
            '`' if chars[i..].starts_with(&['`', '`', '`']) => (Kind::Fence, 3),
            '`' => (Kind::Tick, 1),
            _ => (Kind::Char, 1),
        };
        out.push(Atom {
            start: i,
            end: i + len,
            kind,
        });
        i += len;
    }
    out
}

/// For each code opener, the index of the atom closing it. Fences pair with
/// the next fence, backticks with the next backtick; an opener without a
/// closer is a literal character. Pairing is greedy and never nests.
fn pair_code(atoms: &[Atom]) -> Vec<Option<usize>> {
    let mut partner = vec![None; atoms.len()];
    let mut k = 0;
    while k < atoms.len() {
        let kind = atoms[k].kind;
        if matches!(kind, Kind::Fence | Kind::Tick) {
            if let Some(p) = (k + 1..atoms.len()).find(|&q| atoms[q].kind == kind) {
                partner[k] = Some(p);
                k = p + 1;
                continue;
            }
        }
        k += 1;
    }
    partner
}

/// Characters that belong to the one before them (combining marks, zero
/// width joiner, variation selectors, skin tones): never cut before them.
fn joins_previous(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{200C}'..='\u{200D}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\u{E0020}'..='\u{E007F}')
}

/// At most `max_chars` characters, ending with "…" when cut.
///
/// The cut falls on a character boundary and never inside Slack markup: a
/// `<…>` token (mention, channel, date, link) or an `&…;` entity that would be
/// split is dropped whole, as is everything after a `<` that is never closed.
/// A cut inside inline code or a preformatted block closes it before the
/// "…", so the markup stays balanced; a cut right after an opener drops the
/// opener. Text that already fits is returned unchanged.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    let atoms = atoms(&chars);
    let partner = pair_code(&atoms);
    // Room for what is kept plus any closer, leaving one for the "…".
    let budget = max_chars - 1;
    let mut best: (usize, &str) = (0, "");
    // Inside code: where the opener ends, its partner's index, its closer.
    let mut code: Option<(usize, usize, &str)> = None;
    for (k, atom) in atoms.iter().enumerate() {
        let pos = atom.start;
        if pos > budget {
            break;
        }
        let closer = match code {
            None => Some(""),
            Some((open_end, _, closer)) if pos > open_end => Some(closer),
            Some(_) => None,
        };
        if let Some(closer) = closer {
            let whole = pos == 0 || (!joins_previous(chars[pos]) && chars[pos - 1] != '\u{200D}');
            if whole && pos + closer.len() <= budget {
                best = (pos, closer);
            }
        }
        match code {
            Some((_, p, _)) if p == k => code = None,
            Some(_) => {}
            None => {
                if let Some(p) = partner[k] {
                    let closer = if atom.kind == Kind::Fence { "```" } else { "`" };
                    code = Some((atom.end, p, closer));
                }
            }
        }
    }
    let (cut, closer) = best;
    let mut out: String = chars[..cut].iter().collect();
    if closer.is_empty() {
        out.truncate(out.trim_end().len());
    }
    out.push_str(closer);
    out.push(ELLIPSIS);
    out
}

// ---------------------------------------------------------------------------
// join_capped

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `items` joined with `sep` until the next would pass `max_chars`, counting
/// the room `more(n_left)` takes, then `more(n_left)` (e.g. "…and 12 more").
///
/// An item that cannot fit whole where it would go is truncated into the room
/// left when it is the first item or longer than `max_chars` on its own;
/// otherwise the list stops before it. The result is at most `max_chars`
/// characters (should `more` say too much for that, the whole is truncated).
pub fn join_capped(
    items: &[String],
    sep: &str,
    max_chars: usize,
    more: impl Fn(usize) -> String,
) -> String {
    join_capped_shown(items, sep, max_chars, 0, more).0
}

/// [`join_capped`] of `items` out of `items.len() + beyond` (the `beyond`
/// were left out before, by count): its "…and N more" counts them too, and is
/// said whenever any are left, within `max_chars`. Returns how many of
/// `items` it shows (a truncated one counts), so a caller that names the
/// rest elsewhere starts after these.
pub fn join_capped_shown(
    items: &[String],
    sep: &str,
    max_chars: usize,
    beyond: usize,
    more: impl Fn(usize) -> String,
) -> (String, usize) {
    let sep_len = char_len(sep);
    let total =
        items.iter().map(|i| char_len(i)).sum::<usize>() + sep_len * items.len().saturating_sub(1);
    if beyond == 0 && total <= max_chars {
        return (items.join(sep), items.len());
    }
    let mut out = String::new();
    let mut len = 0;
    let mut shown = 0;
    let mut consumed = 0;
    for (i, item) in items.iter().enumerate() {
        let lead = if shown > 0 { sep_len } else { 0 };
        let left_after = items.len() - i - 1 + beyond;
        let tail = if left_after > 0 {
            sep_len + char_len(&more(left_after))
        } else {
            0
        };
        let item_len = char_len(item);
        let mut piece = None;
        if len + lead + item_len + tail <= max_chars {
            piece = Some(item.clone());
        } else if shown == 0 || item_len > max_chars {
            let room = max_chars.saturating_sub(len + lead + tail);
            if room >= 2 {
                let cut = truncate(item, room);
                if cut.chars().any(|c| c != ELLIPSIS) {
                    piece = Some(cut);
                }
            }
        }
        let Some(piece) = piece else { break };
        if shown > 0 {
            out.push_str(sep);
        }
        len += lead + char_len(&piece);
        let whole = piece.len() == item.len();
        out.push_str(&piece);
        shown += 1;
        consumed = i + 1;
        if !whole {
            break;
        }
    }
    let left = items.len() - consumed + beyond;
    if left > 0 {
        if shown > 0 {
            out.push_str(sep);
        }
        out.push_str(&more(left));
    }
    let out = if char_len(&out) > max_chars {
        truncate(&out, max_chars)
    } else {
        out
    };
    (out, consumed)
}

// ---------------------------------------------------------------------------
// fit_message

/// Cuts a Web API payload to Slack's limits, in place, never failing.
///
/// Understands a message (`chat.postMessage`, `chat.update`,
/// `chat.postEphemeral`, a `response_url` answer: top-level `text`, `blocks`
/// and `attachments[].blocks`), a payload carrying a `view` (`views.publish`,
/// `views.open`, `views.update`, `views.push`, a modal submission's
/// `response_action` answer) and a bare view (`"type": "modal"` or `"home"`).
///
/// Too many blocks: the first blocks are kept and a context block "…N more
/// blocks not shown" stands where the first dropped one was; `actions`
/// blocks are never dropped while other blocks could be instead. Too many
/// fields, context or actions elements, options: the excess is dropped from
/// the end. Too long texts are [`truncate`]d, markup intact. A payload that
/// already fits is left byte-identical. See the module docs for what is
/// deliberately never cut.
pub fn fit_message(payload: &mut Value) {
    let Some(obj) = payload.as_object_mut() else {
        return;
    };
    fit_str(obj.get_mut("text"), MAX_TEXT);
    if matches!(
        obj.get("type").and_then(Value::as_str),
        Some("modal" | "home")
    ) {
        fit_view(obj);
        return;
    }
    if let Some(Value::Object(view)) = obj.get_mut("view") {
        fit_view(view);
    }
    // The message's block arrays: its own, then each attachment's.
    if let Some(Value::Array(blocks)) = obj.get_mut("blocks") {
        blocks.iter_mut().for_each(fit_block);
    }
    if let Some(Value::Array(attachments)) = obj.get_mut("attachments") {
        for attachment in attachments.iter_mut() {
            if let Some(Value::Array(blocks)) = attachment.get_mut("blocks") {
                blocks.iter_mut().for_each(fit_block);
            }
        }
    }
    cap_message_blocks(obj);
}

fn fit_view(view: &mut Map<String, Value>) {
    for key in ["title", "submit", "close"] {
        fit_text_obj(view.get_mut(key), MAX_VIEW_TITLE);
    }
    if let Some(Value::Array(blocks)) = view.get_mut("blocks") {
        blocks.iter_mut().for_each(fit_block);
        let actions = blocks.iter().map(is_actions).collect::<Vec<_>>();
        if let Some(keep) = choose_blocks(&actions, MAX_VIEW_BLOCKS) {
            let mut notice = Some(more_blocks_notice(keep.iter().filter(|k| !**k).count()));
            apply_keep(blocks, &keep, 0, &mut notice);
        }
    }
}

/// The message's block count, attachments' blocks included, to at most 50.
fn cap_message_blocks(obj: &mut Map<String, Value>) {
    // One flag list per block array, top-level first, in message order.
    let mut arrays: Vec<Vec<bool>> = Vec::new();
    if let Some(Value::Array(blocks)) = obj.get("blocks") {
        arrays.push(blocks.iter().map(is_actions).collect());
    } else {
        arrays.push(Vec::new());
    }
    if let Some(Value::Array(attachments)) = obj.get("attachments") {
        for attachment in attachments {
            match attachment.get("blocks") {
                Some(Value::Array(blocks)) => arrays.push(blocks.iter().map(is_actions).collect()),
                _ => arrays.push(Vec::new()),
            }
        }
    }
    let flat: Vec<bool> = arrays.iter().flatten().copied().collect();
    let Some(keep) = choose_blocks(&flat, MAX_MESSAGE_BLOCKS) else {
        return;
    };
    let dropped = keep.iter().filter(|k| !**k).count();
    let mut notice = Some(more_blocks_notice(dropped));
    let mut offset = 0;
    if let Some(Value::Array(blocks)) = obj.get_mut("blocks") {
        apply_keep(blocks, &keep, offset, &mut notice);
    }
    offset += arrays[0].len();
    if let Some(Value::Array(attachments)) = obj.get_mut("attachments") {
        for (attachment, flags) in attachments.iter_mut().zip(&arrays[1..]) {
            if let Some(Value::Array(blocks)) = attachment.get_mut("blocks") {
                apply_keep(blocks, &keep, offset, &mut notice);
            }
            offset += flags.len();
        }
    }
}

fn is_actions(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str) == Some("actions")
}

/// Which of `total` blocks to keep so that they and a notice fit in `limit`:
/// every actions block first (room permitting), then the others from the top.
/// `None` when all fit already.
fn choose_blocks(actions: &[bool], limit: usize) -> Option<Vec<bool>> {
    if actions.len() <= limit {
        return None;
    }
    let room = limit - 1;
    let mut keep = vec![false; actions.len()];
    let mut used = 0;
    for pass_actions in [true, false] {
        for (i, is_action) in actions.iter().enumerate() {
            if *is_action == pass_actions && used < room {
                keep[i] = true;
                used += 1;
            }
        }
    }
    Some(keep)
}

/// Drops the blocks `keep` (indexed from `offset`) does not keep; `notice`
/// goes where the first dropped block was.
fn apply_keep(blocks: &mut Vec<Value>, keep: &[bool], offset: usize, notice: &mut Option<Value>) {
    let old = std::mem::take(blocks);
    for (i, block) in old.into_iter().enumerate() {
        if keep[offset + i] {
            blocks.push(block);
        } else if let Some(n) = notice.take() {
            blocks.push(n);
        }
    }
}

fn more_blocks_notice(n: usize) -> Value {
    let noun = if n == 1 { "block" } else { "blocks" };
    json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("…{n} more {noun} not shown")}]
    })
}

/// One block's texts and element counts.
fn fit_block(block: &mut Value) {
    let Some(b) = block.as_object_mut() else {
        return;
    };
    let kind = b
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match kind.as_str() {
        "section" => {
            fit_text_obj(b.get_mut("text"), MAX_SECTION_TEXT);
            if let Some(Value::Array(fields)) = b.get_mut("fields") {
                fields.truncate(MAX_SECTION_FIELDS);
                for field in fields.iter_mut() {
                    fit_text_obj(Some(field), MAX_FIELD_TEXT);
                }
            }
            if let Some(accessory) = b.get_mut("accessory") {
                fit_element(accessory);
            }
        }
        "header" => fit_text_obj(b.get_mut("text"), MAX_HEADER_TEXT),
        "context" => {
            if let Some(Value::Array(elements)) = b.get_mut("elements") {
                elements.truncate(MAX_CONTEXT_ELEMENTS);
                for element in elements.iter_mut() {
                    match element.get("type").and_then(Value::as_str) {
                        Some("image") => fit_str(element.get_mut("alt_text"), MAX_ALT_TEXT),
                        _ => fit_text_obj(Some(element), MAX_CONTEXT_TEXT),
                    }
                }
            }
        }
        "actions" => {
            if let Some(Value::Array(elements)) = b.get_mut("elements") {
                elements.truncate(MAX_ACTIONS_ELEMENTS);
                elements.iter_mut().for_each(fit_element);
            }
        }
        "image" => {
            fit_str(b.get_mut("alt_text"), MAX_ALT_TEXT);
            fit_text_obj(b.get_mut("title"), MAX_ALT_TEXT);
        }
        "input" => {
            fit_text_obj(b.get_mut("label"), MAX_LABEL_TEXT);
            fit_text_obj(b.get_mut("hint"), MAX_LABEL_TEXT);
            if let Some(element) = b.get_mut("element") {
                fit_element(element);
            }
        }
        _ => {}
    }
}

/// An interactive element: button, overflow, select, picker, image.
fn fit_element(element: &mut Value) {
    let Some(e) = element.as_object_mut() else {
        return;
    };
    let kind = e
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match kind.as_str() {
        "button" => fit_text_obj(e.get_mut("text"), MAX_BUTTON_TEXT),
        "image" => fit_str(e.get_mut("alt_text"), MAX_ALT_TEXT),
        _ => {}
    }
    let max_options = if kind == "overflow" {
        MAX_OVERFLOW_OPTIONS
    } else {
        MAX_SELECT_OPTIONS
    };
    if let Some(Value::Array(options)) = e.get_mut("options") {
        options.truncate(max_options);
        options.iter_mut().for_each(fit_option);
    }
    if let Some(Value::Array(groups)) = e.get_mut("option_groups") {
        groups.truncate(MAX_SELECT_OPTIONS);
        for group in groups.iter_mut() {
            fit_text_obj(group.get_mut("label"), MAX_OPTION_TEXT);
            if let Some(Value::Array(options)) = group.get_mut("options") {
                options.truncate(MAX_SELECT_OPTIONS);
                options.iter_mut().for_each(fit_option);
            }
        }
    }
    // Cut exactly as the options are, so they still match.
    if let Some(option) = e.get_mut("initial_option") {
        fit_option(option);
    }
    if let Some(Value::Array(options)) = e.get_mut("initial_options") {
        options.iter_mut().for_each(fit_option);
    }
    fit_text_obj(e.get_mut("placeholder"), MAX_PLACEHOLDER);
    if let Some(Value::Object(confirm)) = e.get_mut("confirm") {
        fit_text_obj(confirm.get_mut("title"), MAX_CONFIRM_TITLE);
        fit_text_obj(confirm.get_mut("text"), MAX_CONFIRM_TEXT);
        fit_text_obj(confirm.get_mut("confirm"), MAX_CONFIRM_BUTTON);
        fit_text_obj(confirm.get_mut("deny"), MAX_CONFIRM_BUTTON);
    }
}

/// An option object: its text and description; never its value.
fn fit_option(option: &mut Value) {
    fit_text_obj(option.get_mut("text"), MAX_OPTION_TEXT);
    fit_text_obj(option.get_mut("description"), MAX_OPTION_TEXT);
}

/// A text object's (`{"type": "mrkdwn", "text": …}`) text.
fn fit_text_obj(text_obj: Option<&mut Value>, max_chars: usize) {
    if let Some(t) = text_obj {
        fit_str(t.get_mut("text"), max_chars);
    }
}

/// A string, replaced only when too long, so what fits stays byte-identical.
fn fit_str(value: Option<&mut Value>, max_chars: usize) {
    if let Some(Value::String(s)) = value {
        if s.chars().count() > max_chars {
            *s = truncate(s, max_chars);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n_chars(s: &str) -> usize {
        s.chars().count()
    }

    fn section(text: &str) -> Value {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    }

    fn actions(block_id: &str) -> Value {
        json!({
            "type": "actions",
            "block_id": block_id,
            "elements": [{
                "type": "button",
                "action_id": "ack",
                "text": {"type": "plain_text", "text": "Ack"},
                "value": "job-1"
            }]
        })
    }

    #[test]
    fn hostile_channel_mention_stays_escaped_after_escape_and_truncate() {
        let hostile = "<!channel> & <@U0ADMIN> <https://evil.example|click me> ".repeat(4);
        let escaped = crate::domain::text::escape_slack(&hostile);
        for max in 0..=n_chars(&escaped) + 1 {
            let out = truncate(&escaped, max);
            assert!(n_chars(&out) <= max);
            assert!(!out.contains('<') && !out.contains('>'), "{out:?}");
            let body = out.trim_end_matches(ELLIPSIS);
            // Never a partial entity: every `&` starts a whole one.
            for (i, _) in body.match_indices('&') {
                let rest = &body[i..];
                assert!(
                    rest.starts_with("&amp;")
                        || rest.starts_with("&lt;")
                        || rest.starts_with("&gt;"),
                    "partial entity in {out:?}"
                );
            }
        }
    }

    #[test]
    fn a_4kb_stack_trace_in_a_section_is_cut_to_3000_ending_with_an_ellipsis() {
        let frame = "    at servo::backfill::worker::run_partition (src/worker.rs:412:9)\n";
        let trace = format!(
            "*Job failed*\n```{}```",
            frame.repeat(4096 / frame.len() + 1)
        );
        assert!(trace.len() > 4096);
        let mut message = json!({"text": "Job failed", "blocks": [section(&trace)]});
        fit_message(&mut message);
        let text = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(n_chars(text) <= MAX_SECTION_TEXT);
        assert!(n_chars(text) > MAX_SECTION_TEXT - 100, "cut far too early");
        assert!(text.ends_with('…'));
        assert_eq!(
            text.matches("```").count() % 2,
            0,
            "the code block is closed"
        );
    }

    #[test]
    fn a_mention_at_the_cut_point_is_not_split() {
        let s = format!("{}<@U12345678> is on call", "a".repeat(10));
        for max in 11..=22 {
            assert_eq!(
                truncate(&s, max),
                format!("{}…", "a".repeat(10)),
                "max {max}"
            );
        }
        assert_eq!(truncate(&s, 24), format!("{}<@U12345678>…", "a".repeat(10)));
    }

    #[test]
    fn a_date_token_at_the_cut_point_is_not_split() {
        let token = "<!date^1700000000^{date_short_pretty} at {time}|2023-11-14 22:13 UTC>";
        let s = format!("ETA {token}, deadline {token}");
        let out = truncate(&s, 40);
        assert_eq!(out, "ETA…");
        let out = truncate(&s, n_chars(token) + 6);
        assert_eq!(out, format!("ETA {token},…"));
    }

    #[test]
    fn an_entity_at_the_cut_point_is_not_split() {
        assert_eq!(truncate("fish &amp; chips", 9), "fish…");
        assert_eq!(truncate("fish &amp; chips", 11), "fish &amp;…");
    }

    #[test]
    fn text_that_fits_is_returned_unchanged() {
        assert_eq!(truncate("<@U1> &amp; `x`", 15), "<@U1> &amp; `x`");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn a_cut_inside_inline_code_closes_it() {
        let out = truncate("run `cargo test --lib slack::limits` now", 20);
        assert_eq!(out, "run `cargo test --`…");
        assert_eq!(n_chars(&out), 20);
    }

    #[test]
    fn a_cut_never_separates_an_emoji_from_its_modifier() {
        let s = "ok 👍🏽👍🏽";
        assert_eq!(truncate(s, 5), "ok…");
        assert_eq!(truncate(s, 6), "ok 👍🏽…");
    }

    #[test]
    fn join_capped_of_60_items_of_80_chars_within_3000_says_and_24_more() {
        let items: Vec<String> = (0..60)
            .map(|i| format!("{i:02}{}", "x".repeat(78)))
            .collect();
        let out = join_capped(&items, "\n", 3_000, |n| format!("…and {n} more"));
        assert!(n_chars(&out) <= 3_000);
        // 36 items take 36 * 80 + 35 newlines = 2915; "\n…and 24 more" adds 13.
        // A 37th would make 2996, 3009 with "\n…and 23 more": too many.
        assert!(out.ends_with("\n…and 24 more"), "{out}");
        let shown = out.lines().count() - 1;
        assert_eq!(shown, 36);
        assert_eq!(shown + 24, items.len());
        let (same, counted) =
            join_capped_shown(&items, "\n", 3_000, 0, |n| format!("…and {n} more"));
        assert_eq!((same, counted), (out, 36));
        // Items left out before by count are counted in the "more", which
        // is said even when every item given fits.
        let few = &items[..3];
        let (with_beyond, counted) =
            join_capped_shown(few, "\n", 3_000, 57, |n| format!("…and {n} more"));
        assert_eq!(counted, 3);
        assert_eq!(with_beyond, format!("{}\n…and 57 more", few.join("\n")));
        let tight = few.join("\n").chars().count();
        let (cut, counted) = join_capped_shown(few, "\n", tight, 57, |n| format!("…and {n} more"));
        assert!(cut.chars().count() <= tight, "{cut}");
        assert!(
            cut.ends_with(&format!("…and {} more", 57 + 3 - counted)),
            "{cut}"
        );
    }

    #[test]
    fn join_capped_of_items_that_fit_has_no_suffix() {
        let items = vec!["a".to_string(), "b".to_string()];
        assert_eq!(join_capped(&items, ", ", 4, |n| format!("+{n}")), "a, b");
        assert_eq!(join_capped(&[], ", ", 4, |n| format!("+{n}")), "");
    }

    #[test]
    fn join_capped_truncates_a_first_item_longer_than_the_budget() {
        let items = vec!["y".repeat(500), "z".to_string()];
        let out = join_capped(&items, ", ", 100, |n| format!("…and {n} more"));
        assert!(n_chars(&out) <= 100);
        assert!(out.starts_with("yyyy"));
        assert!(out.ends_with("…, …and 1 more"), "{out}");
    }

    #[test]
    fn fit_message_on_70_blocks_keeps_50_and_every_actions_block() {
        let mut blocks: Vec<Value> = (0..68).map(|i| section(&format!("row {i}"))).collect();
        blocks.insert(5, actions("early"));
        blocks.push(actions("buttons"));
        assert_eq!(blocks.len(), 70);
        let mut message = json!({"text": "jobs", "blocks": blocks});
        fit_message(&mut message);
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), MAX_MESSAGE_BLOCKS);
        assert_eq!(blocks[5]["block_id"], "early");
        assert_eq!(
            blocks[49]["block_id"], "buttons",
            "the notice precedes the buttons"
        );
        assert_eq!(blocks[48]["type"], "context");
        assert_eq!(
            blocks[48]["elements"][0]["text"],
            "…21 more blocks not shown"
        );
        assert_eq!(blocks[47]["text"]["text"], "row 46");
    }

    #[test]
    fn fit_message_counts_attachments_blocks_with_the_messages() {
        let top: Vec<Value> = (0..30).map(|i| section(&format!("top {i}"))).collect();
        let attached: Vec<Value> = (0..30).map(|i| section(&format!("att {i}"))).collect();
        let mut message =
            json!({"blocks": top, "attachments": [{"color": "#f00", "blocks": attached}]});
        fit_message(&mut message);
        let top = message["blocks"].as_array().unwrap().len();
        let att = message["attachments"][0]["blocks"].as_array().unwrap();
        assert_eq!(top + att.len(), MAX_MESSAGE_BLOCKS);
        assert_eq!(att[19]["elements"][0]["text"], "…11 more blocks not shown");
    }

    #[test]
    fn fit_message_cuts_a_200_char_header_to_150() {
        let mut message = json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(200)}}
        ]});
        fit_message(&mut message);
        let text = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(n_chars(text), MAX_HEADER_TEXT);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn fit_message_keeps_10_of_15_context_elements() {
        let elements: Vec<Value> = (0..15)
            .map(|i| json!({"type": "mrkdwn", "text": format!("e{i}")}))
            .collect();
        let mut message = json!({"blocks": [{"type": "context", "elements": elements}]});
        fit_message(&mut message);
        let elements = message["blocks"][0]["elements"].as_array().unwrap();
        assert_eq!(elements.len(), MAX_CONTEXT_ELEMENTS);
        assert_eq!(elements[9]["text"], "e9");
    }

    #[test]
    fn fit_message_cuts_a_400_char_confirm_text_to_300() {
        let mut message = json!({"blocks": [{"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Pause"},
            "value": "v".repeat(2_500),
            "confirm": {
                "title": {"type": "plain_text", "text": "Pause?"},
                "text": {"type": "mrkdwn", "text": "c".repeat(400)},
                "confirm": {"type": "plain_text", "text": "Pause"},
                "deny": {"type": "plain_text", "text": "Cancel"}
            }
        }]}]});
        fit_message(&mut message);
        let button = &message["blocks"][0]["elements"][0];
        let text = button["confirm"]["text"]["text"].as_str().unwrap();
        assert_eq!(n_chars(text), MAX_CONFIRM_TEXT);
        assert_eq!(
            button["value"],
            "v".repeat(2_500),
            "values are ids: left alone"
        );
    }

    #[test]
    fn fit_message_cuts_a_modal_title_to_24_inside_a_views_payload() {
        let mut payload = json!({"trigger_id": "t", "view": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "Mitigations for backfill job 1234"},
            "blocks": (0..120).map(|i| section(&format!("{i}"))).collect::<Vec<_>>()
        }});
        fit_message(&mut payload);
        let title = payload["view"]["title"]["text"].as_str().unwrap();
        assert_eq!(n_chars(title), MAX_VIEW_TITLE);
        assert_eq!(
            payload["view"]["blocks"].as_array().unwrap().len(),
            MAX_VIEW_BLOCKS
        );
    }

    #[test]
    fn fit_message_leaves_a_message_that_fits_byte_identical() {
        let mut message = json!({
            "channel": "C1",
            "text": "Job <https://servo/jobs/1|1> is at risk &amp; late",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "At risk", "emoji": true}},
                {"type": "section", "block_id": "b1",
                 "text": {"type": "mrkdwn", "text": "ETA <!date^1700000000^{time}|22:13>, owner <@U1>"},
                 "fields": [{"type": "mrkdwn", "text": "*SLA*\n4h"}, {"type": "mrkdwn", "text": "*Done*\n40%"}],
                 "accessory": {"type": "overflow", "action_id": "more", "options": [
                     {"text": {"type": "plain_text", "text": "Snooze"}, "value": "snooze:1"}]}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "`servo-1`"},
                    {"type": "image", "image_url": "https://x/y.png", "alt_text": "chart"}]},
                {"type": "actions", "block_id": "b1", "elements": [
                    {"type": "button", "action_id": "ack", "text": {"type": "plain_text", "text": "Ack"},
                     "value": "job-1", "style": "primary",
                     "confirm": {"title": {"type": "plain_text", "text": "Sure?"},
                        "text": {"type": "mrkdwn", "text": "Ack job 1"},
                        "confirm": {"type": "plain_text", "text": "Yes"},
                        "deny": {"type": "plain_text", "text": "No"}}}]}
            ],
            "attachments": [{"color": "#e01e5a", "blocks": [section("details")]}]
        });
        let before = serde_json::to_string(&message).unwrap();
        fit_message(&mut message);
        assert_eq!(serde_json::to_string(&message).unwrap(), before);
    }

    /// A tiny deterministic generator: no crate needed for a few hundred cases.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % below.max(1)
        }
    }

    #[test]
    fn truncate_never_passes_the_limit_nor_leaves_an_unclosed_token_on_random_text() {
        const PIECES: &[&str] = &[
            "abc",
            " ",
            "\n",
            "<@U123ABC>",
            "<!subteam^S1>",
            "<#C42>",
            "<!date^1700000000^{date_short_pretty} at {time}|Nov 14>",
            "<https://servo.example/jobs?id=1&amp;x=2|job 1>",
            "&amp;",
            "&lt;",
            "&gt;",
            "&",
            "<",
            ">",
            "`",
            "```",
            "`code`",
            "```trace\nline```",
            "é",
            "e\u{301}",
            "🙂",
            "👍🏽",
            "👩\u{200D}💻",
            "日本",
            ";",
            "#",
        ];
        let mut rng = Lcg(0x5eed);
        for case in 0..500 {
            let s: String = (0..rng.next(60))
                .map(|_| PIECES[rng.next(PIECES.len())])
                .collect();
            let len = n_chars(&s);
            let max = rng.next(len + 5);
            let out = truncate(&s, max);
            assert!(
                n_chars(&out) <= max,
                "case {case}: {s:?} / {max} -> {out:?}"
            );
            if len <= max {
                assert_eq!(out, s);
                continue;
            }
            if max > 0 {
                assert!(out.ends_with('…'), "case {case}: {out:?}");
            }
            // Nothing after the last `<` lacks its `>`.
            if let Some(open) = out.rfind('<') {
                assert!(
                    out[open..].contains('>'),
                    "case {case}: unclosed < in {out:?}"
                );
            }
            // What is kept is the input's start, bar a closer for cut code.
            let body = out.strip_suffix('…').unwrap_or(&out);
            let kept = [
                body,
                body.strip_suffix("```").unwrap_or(body),
                body.strip_suffix('`').unwrap_or(body),
            ];
            let kept = kept
                .iter()
                .find(|k| s.starts_with(**k))
                .unwrap_or_else(|| panic!("case {case}: {out:?} is not a prefix of {s:?}"));
            // No entity of the input is split by the cut.
            let chars: Vec<char> = s.chars().collect();
            let kept_len = n_chars(kept);
            for (i, c) in chars.iter().enumerate().take(kept_len) {
                if *c == '&' {
                    if let Some(l) = entity_len(&chars[i..]) {
                        assert!(i + l <= kept_len, "case {case}: entity split in {out:?}");
                    }
                }
            }
        }
    }
}
