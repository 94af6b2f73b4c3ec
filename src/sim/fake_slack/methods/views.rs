//! `views.*`: modals opened and updated, App Homes published.

use crate::sim::fake_slack::blocks::Check;
use crate::sim::fake_slack::wire::{str_arg, Refusal, Reply};
use crate::sim::fake_slack::{View, Workspace};
use serde_json::{json, Map, Value};

impl Workspace {
    pub(super) fn views_open(&mut self, body: &Value) -> Result<Reply, Refusal> {
        // Slack reports every views.open argument problem, view schema
        // violations included, as invalid_arguments rather than invalid_blocks.
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        let trigger_id =
            str_arg(body, "trigger_id").ok_or_else(|| invalid("invalid `trigger_id`"))?;
        let mut view = Self::view_arg(body)?;
        let mut check = Check::default();
        check.modal(&view, "/view");
        if !check.errors.is_empty() {
            return Err(Refusal::with_messages("invalid_arguments", check.errors));
        }
        self.view_counter += 1;
        let id = format!("V{:09}", self.view_counter);
        let fields = modal_fields(&mut view, &id);
        fields.insert("state".into(), json!({ "values": {} }));
        fields.insert("root_view_id".into(), json!(id));
        fields.insert("hash".into(), json!(format!("{}.h1", self.view_counter)));
        self.views.push(View {
            id,
            trigger_id: trigger_id.to_string(),
            view: view.clone(),
        });
        Ok(Reply::new(json!({ "ok": true, "view": view })))
    }

    /// A view argument: a JSON object, or a string holding one.
    fn view_arg(body: &Value) -> Result<Value, Refusal> {
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        match body.get("view") {
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .map_err(|e| invalid(&format!("`view` is not valid JSON: {e}"))),
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            Some(_) => Err(invalid("`view` must be a JSON object")),
            None => Err(invalid("missing required field: view")),
        }
    }

    /// Replaces an open modal, found by `view_id` or `external_id`. A `hash`
    /// that is not the view's current one is refused (`hash_conflict`): the
    /// view changed since the caller read it.
    pub(super) fn views_update(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        let view_id = str_arg(body, "view_id");
        let external_id = str_arg(body, "external_id");
        if view_id.is_none() && external_id.is_none() {
            return Err(invalid("either `view_id` or `external_id` is required"));
        }
        let mut view = Self::view_arg(body)?;
        let mut check = Check::default();
        check.modal(&view, "/view");
        if !check.errors.is_empty() {
            return Err(Refusal::with_messages("invalid_arguments", check.errors));
        }
        let Some(stored) = self.views.iter_mut().find(|v| {
            Some(v.id.as_str()) == view_id
                || (external_id.is_some()
                    && v.view.get("external_id").and_then(Value::as_str) == external_id)
        }) else {
            return Err(Refusal::new("not_found"));
        };
        let current = stored
            .view
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(hash) = str_arg(body, "hash") {
            if hash != current {
                return Err(Refusal::new("hash_conflict"));
            }
        }
        let hash = next_hash(&stored.id, current);
        let id = stored.id.clone();
        let fields = modal_fields(&mut view, &id);
        // What the user typed stays: an update does not clear the inputs.
        let state = stored
            .view
            .get("state")
            .cloned()
            .unwrap_or(json!({ "values": {} }));
        fields.insert("state".into(), state);
        fields.insert("root_view_id".into(), json!(id));
        fields.insert("hash".into(), json!(hash));
        stored.view = view.clone();
        Ok(Reply::new(json!({ "ok": true, "view": view })))
    }

    /// Publishes a user's App Home: a view of type `home`, up to 100 blocks.
    pub(super) fn views_publish(&mut self, body: &Value) -> Result<Reply, Refusal> {
        let invalid =
            |msg: &str| Refusal::with_messages("invalid_arguments", vec![msg.to_string()]);
        let user = str_arg(body, "user_id")
            .ok_or_else(|| invalid("missing required field: user_id"))?
            .to_string();
        let mut view = Self::view_arg(body)?;
        let mut check = Check::default();
        check.home(&view, "/view");
        if !check.errors.is_empty() {
            return Err(Refusal::with_messages("invalid_arguments", check.errors));
        }
        let previous = self.homes.get(&user);
        let current = previous
            .and_then(|v| v.get("hash"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(hash) = str_arg(body, "hash") {
            if hash != current {
                return Err(Refusal::new("hash_conflict"));
            }
        }
        let id = match previous.and_then(|v| v.get("id")).and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                self.view_counter += 1;
                format!("V{:09}", self.view_counter)
            }
        };
        let hash = next_hash(&id, &current);
        let fields = view
            .as_object_mut()
            .expect("home() checked it is an object");
        fields.insert("id".into(), json!(id));
        fields.insert("hash".into(), json!(hash));
        self.homes.insert(user, view.clone());
        Ok(Reply::new(json!({ "ok": true, "view": view })))
    }
}

/// A view's next `hash`: `<id>.h<n>`, one more than the current one's `n`.
fn next_hash(id: &str, current: &str) -> String {
    let n = current
        .rsplit_once(".h")
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{id}.h{}", n + 1)
}

/// A checked modal's fields, given its `id` and, as Slack fills them in, an
/// empty `callback_id`, `private_metadata` and `external_id` where missing.
fn modal_fields<'v>(view: &'v mut Value, id: &str) -> &'v mut Map<String, Value> {
    let fields = view
        .as_object_mut()
        .expect("modal() checked it is an object");
    fields.insert("id".into(), json!(id));
    for key in ["callback_id", "private_metadata", "external_id"] {
        fields.entry(key).or_insert_with(|| json!(""));
    }
    fields
}
