//! Tags on state machines and activities: TagResource, UntagResource, ListTagsForResource, and
//! the `tags` of CreateStateMachine and CreateActivity, with AWS's limits and errors.

use super::actions::{activity_name, internal, machine_name, Request};
use super::SfnError;
use crate::runtime::MAX_TAGS;
use crate::state::AppState;
use serde_json::{json, Value};

/// AWS's limits on a tag key and value, in characters.
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

fn invalid(message: String) -> SfnError {
    SfnError::new("ValidationException", message)
}

/// Tags may hold Unicode letters, digits, white space and `_ . : / = + - @`.
fn check_text(text: &str, at: &str, max: usize) -> Result<(), SfnError> {
    let count = text.chars().count();
    if count > max {
        return Err(invalid(format!("1 validation error detected: Value '{text}' at '{at}' failed to satisfy constraint: Member must have length less than or equal to {max}")));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(*c)))
    {
        return Err(invalid(format!("Invalid character {c:?} in '{at}': tags may only contain Unicode letters, digits, white space, or these symbols: _ . : / = + - @")));
    }
    Ok(())
}

fn check_key(key: &str, at: &str) -> Result<(), SfnError> {
    if key.is_empty() {
        return Err(invalid(format!("1 validation error detected: Value '' at '{at}' failed to satisfy constraint: Member must have length greater than or equal to 1")));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid(format!(
            "Tag keys starting with 'aws:' are reserved for AWS use: '{key}'"
        )));
    }
    check_text(key, at, MAX_KEY)
}

fn text<'a>(value: Option<&'a Value>, at: &str) -> Result<&'a str, SfnError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(invalid(format!("1 validation error detected: Value null at '{at}' failed to satisfy constraint: Member must not be null"))),
        Some(_) => Err(SfnError::new("SerializationException", format!("'{at}' must be a string"))),
    }
}

/// The `field` list of `{"key", "value"}` objects, checked; a key given twice keeps its last
/// value. Absent means none.
pub(super) fn tags(r: Request<'_>, field: &str) -> Result<Vec<(String, String)>, SfnError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, tag) in r.list(field)?.iter().enumerate() {
        let at = format!("{field}.{}.member", i + 1);
        if !tag.is_object() {
            return Err(SfnError::new(
                "SerializationException",
                format!("'{at}' must be an object with a key and a value"),
            ));
        }
        let key = text(tag.get("key"), &format!("{at}.key"))?;
        check_key(key, &format!("{at}.key"))?;
        let value = text(tag.get("value"), &format!("{at}.value"))?;
        check_text(value, &format!("{at}.value"), MAX_VALUE)?;
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value.to_string()));
    }
    if out.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(out)
}

fn too_many() -> SfnError {
    SfnError::new(
        "TooManyTags",
        format!("A resource can have at most {MAX_TAGS} tags"),
    )
}

/// Checks that `arn` is a state machine or activity that exists.
async fn existing(state: &AppState, arn: &str) -> Result<(), SfnError> {
    let found = if let Ok(name) = machine_name(arn) {
        state
            .runtime
            .state_machine(name)
            .await
            .map_err(internal)?
            .is_some()
    } else {
        let name = activity_name(arn)?;
        state
            .runtime
            .activity(name)
            .await
            .map_err(internal)?
            .is_some()
    };
    if !found {
        return Err(
            SfnError::new("ResourceNotFound", format!("Resource not found: '{arn}'")).about(arn),
        );
    }
    Ok(())
}

/// Sets `tags` on the resource `arn` just created.
pub(super) async fn tag_new(
    state: &AppState,
    arn: &str,
    tags: &[(String, String)],
) -> Result<(), SfnError> {
    if !tags.is_empty() && !state.runtime.tag(arn, tags).await.map_err(internal)? {
        return Err(too_many().about(arn));
    }
    Ok(())
}

pub(super) async fn tag_resource(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("resourceArn")?;
    r.required("tags")?;
    let tags = tags(r, "tags")?;
    existing(state, arn).await?;
    if !state.runtime.tag(arn, &tags).await.map_err(internal)? {
        return Err(too_many().about(arn));
    }
    Ok(json!({}))
}

pub(super) async fn untag_resource(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("resourceArn")?;
    r.required("tagKeys")?;
    let mut keys = Vec::new();
    for (i, key) in r.list("tagKeys")?.iter().enumerate() {
        let at = format!("tagKeys.{}.member", i + 1);
        let key = text(Some(key), &at)?;
        if key.is_empty() || key.chars().count() > MAX_KEY {
            return Err(invalid(format!("1 validation error detected: Value '{key}' at '{at}' failed to satisfy constraint: Member must have length between 1 and {MAX_KEY}")));
        }
        keys.push(key.to_string());
    }
    existing(state, arn).await?;
    state.runtime.untag(arn, &keys).await.map_err(internal)?;
    Ok(json!({}))
}

pub(super) async fn list_tags(state: &AppState, r: Request<'_>) -> Result<Value, SfnError> {
    let arn = r.string("resourceArn")?;
    existing(state, arn).await?;
    let tags = state.runtime.tags(arn).await.map_err(internal)?;
    let tags: Vec<Value> = tags
        .iter()
        .map(|(key, value)| json!({ "key": key, "value": value }))
        .collect();
    Ok(json!({ "tags": tags }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tags: Value) -> Result<Vec<(String, String)>, SfnError> {
        let request = json!({ "tags": tags });
        super::tags(Request(&request), "tags")
    }

    #[test]
    fn lengths_count_characters_and_a_repeated_key_keeps_its_last_value() {
        let key = "é".repeat(MAX_KEY);
        let value = "ü".repeat(MAX_VALUE);
        let tags = parse(json!([
            {"key": key, "value": "first"},
            {"key": "other", "value": ""},
            {"key": key, "value": value},
        ]))
        .unwrap();
        assert_eq!(
            tags,
            [("other".into(), String::new()), (key.clone(), value)]
        );
        let long = parse(json!([{"key": format!("{key}é"), "value": "v"}])).unwrap_err();
        assert_eq!(long.kind, "ValidationException");
        assert!(
            long.message.contains("tags.1.member.key"),
            "{}",
            long.message
        );
    }

    #[test]
    fn malformed_tags_are_refused_with_aws_errors() {
        for (tags, kind) in [
            (json!([{"key": "", "value": "v"}]), "ValidationException"),
            (
                json!([{"key": "AWS:Stack", "value": "v"}]),
                "ValidationException",
            ),
            (
                json!([{"key": "k", "value": "<script>"}]),
                "ValidationException",
            ),
            (json!([{"key": "k"}]), "ValidationException"),
            (json!([{"key": 1, "value": "v"}]), "SerializationException"),
            (json!(["k=v"]), "SerializationException"),
            (json!({"k": "v"}), "SerializationException"),
        ] {
            let error = parse(tags.clone()).unwrap_err();
            assert_eq!(error.kind, kind, "{tags}: {}", error.message);
        }
        let many: Vec<Value> = (0..=MAX_TAGS)
            .map(|i| json!({"key": format!("k{i}"), "value": ""}))
            .collect();
        assert_eq!(parse(json!(many)).unwrap_err().kind, "TooManyTags");
        assert_eq!(
            parse(json!([{"key": "a b:c/d=e+f-g@h_i.j", "value": "Ünïcode 42"}]))
                .unwrap()
                .len(),
            1
        );
    }
}
