//! JSONPath as ASL uses it: parsing paths, reading them against the input or the `$$` context,
//! writing a result at a `ResultPath`, and rendering payload templates (`"key.$"` fields).
//!
//! Supported syntax:
//!
//! | syntax | meaning | where |
//! | --- | --- | --- |
//! | `$` / `$$` | the input / the context object | everywhere (`$$` not in InputPath, OutputPath, ResultPath) |
//! | `.name`, `['name']`, `["name"]` | an object field | everywhere |
//! | `[3]` | an array element | everywhere |
//! | `[*]`, `.*` | every child | InputPath, OutputPath, template values |
//! | `..name`, `..*` | recursive descent | InputPath, OutputPath, template values |
//!
//! | `[-1]` | an array element counted from the end | InputPath, OutputPath, template values |
//! | `[1:3]`, `[::2]`, `[-2:]` | a slice | InputPath, OutputPath, template values |
//! | `[0,2]`, `['a','b']` | a union | InputPath, OutputPath, template values |
//! | `[?(@.price < 10)]` | a filter (see `filter`) | InputPath, OutputPath, template values |
//!
//! Paths using `[*]`, `..`, slices, unions or filters select a list and always yield a JSON
//! array (possibly empty), as AWS does. Reference paths (ResultPath, Choice `Variable`, …)
//! allow only names and non-negative indexes. Intrinsic functions (`States.Format(…)`) are parsed
//! and evaluated by `intrinsics`.

use super::definition::Problem;
use super::filter::{self, Expr};
use super::intrinsics::{self, Call, EvalError, IntrinsicError, Random, Scope};
use super::step::MAX_PAYLOAD_BYTES;
use serde_json::{Map, Value};
use std::fmt;

/// Most steps a path may have.
pub(crate) const MAX_SEGMENTS: usize = 64;
/// Most nodes a path may have in hand after any of its steps (`$..*..*` on a large input
/// would otherwise multiply without bound).
pub(crate) const MAX_SELECTED: usize = 100_000;

/// Where workflow variables travel inside the context object handed to paths; never shown as
/// part of `$$`.
pub(crate) const VARIABLES: &str = "\u{0}variables";

/// Which document a path starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    /// `$`: the state's (effective) input.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Field(String),
    Index(usize),
    /// `[*]` or `.*`.
    Wildcard,
    /// `..name`, or `..*` when `None`.
    Descend(Option<String>),
    /// `[-n]`: the n-th element from the end.
    FromEnd(usize),
    /// `[start:end:step]`, each part optional; negative start/end count from the end.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `[0,2]` or `['a','b']`.
    Union(Vec<Key>),
    /// `[?(…)]`, with its source text.
    Filter(String, Box<Expr>),
}

/// One member of a union.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Index(i64),
    Name(String),
}

/// A parsed JSONPath; once you hold one it is syntactically valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    text: String,
    root: Root,
    segments: Vec<Segment>,
}

/// Why a string is not a path we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{path}' is not a valid path: {reason}")]
pub(crate) struct PathError {
    path: String,
    reason: String,
}

/// A path selected more than a state's output may hold: more than `MAX_SELECTED` nodes, or
/// more than the payload limit in all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The JSONPath '{path}' selects more than {MAX_SELECTED} nodes or {MAX_PAYLOAD_BYTES} bytes of data")]
pub(crate) struct TooLarge {
    path: String,
}

/// A `ResultPath` could not be applied because a step of it is not an object (or not an array
/// long enough): AWS's `States.ResultPathMatchFailure`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unable to apply ResultPath '{path}' to input '{input}'")]
pub(crate) struct ResultPathMismatch {
    path: String,
    input: String,
}

impl Path {
    /// Parses `text`, which must start with `$`.
    pub(crate) fn parse(text: &str) -> Result<Path, PathError> {
        let fail = |reason: &str| PathError {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        let Some(after_dollar) = text.strip_prefix('$') else {
            return Err(fail("a path must start with '$'"));
        };
        let name_len = after_dollar
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after_dollar.len());
        let (root, mut rest) = match after_dollar.strip_prefix('$') {
            Some(r) => (Root::Context, r),
            None if name_len > 0 && !after_dollar.starts_with(|c: char| c.is_ascii_digit()) => (
                Root::Variable(after_dollar[..name_len].to_string()),
                &after_dollar[name_len..],
            ),
            None => (Root::Input, after_dollar),
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("..") {
                if let Some(r) = r.strip_prefix('*') {
                    segments.push(Segment::Descend(None));
                    rest = r;
                } else {
                    let (name, r) = take_name(r)
                        .ok_or_else(|| fail("'..' must be followed by a field name or '*'"))?;
                    segments.push(Segment::Descend(Some(name.to_string())));
                    rest = r;
                }
            } else if let Some(r) = rest.strip_prefix('.') {
                if let Some(r) = r.strip_prefix('*') {
                    segments.push(Segment::Wildcard);
                    rest = r;
                } else {
                    let (name, r) =
                        take_name(r).ok_or_else(|| fail("'.' must be followed by a field name"))?;
                    segments.push(Segment::Field(name.to_string()));
                    rest = r;
                }
            } else if let Some(r) = rest.strip_prefix('[') {
                let (segment, r) = bracket(r).map_err(|e| fail(&e))?;
                segments.push(segment);
                rest = r;
            } else {
                return Err(fail("expected '.', '..' or '[' after the root or a step"));
            }
            if segments.len() > MAX_SEGMENTS {
                return Err(fail(&format!(
                    "a path may have at most {MAX_SEGMENTS} steps"
                )));
            }
        }
        Ok(Path {
            text: text.to_string(),
            root,
            segments,
        })
    }

    /// The path `$`: the whole input.
    pub(crate) fn whole_input() -> Path {
        Path {
            text: "$".to_string(),
            root: Root::Input,
            segments: Vec::new(),
        }
    }

    /// The path as written in the definition.
    /// True for `$`: the whole input, nothing to select.
    pub(crate) fn is_whole_input(&self) -> bool {
        self.root == Root::Input && self.segments.is_empty()
    }

    /// True when the path starts at a workflow variable (`$name`).
    pub(crate) fn is_variable(&self) -> bool {
        matches!(self.root, Root::Variable(_))
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// True for a *reference path*: one that can only ever identify a single node.
    pub(crate) fn is_reference(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)))
    }

    /// True when the path names at most one node (a reference path, or one with `[-n]`).
    fn is_definite(&self) -> bool {
        self.segments.iter().all(|s| {
            matches!(
                s,
                Segment::Field(_) | Segment::Index(_) | Segment::FromEnd(_)
            )
        })
    }

    /// True when the path starts at the context object (`$$`).
    pub(crate) fn is_context(&self) -> bool {
        self.root == Root::Context
    }

    /// True when [`Path::select`] reads its `context` argument (`$$`, or a variable).
    pub(crate) fn reads_context(&self) -> bool {
        self.root != Root::Input
    }

    /// The bracketed form AWS prints in error causes, e.g. `$['a'][0]`.
    pub(crate) fn canonical(&self) -> String {
        let mut out = match &self.root {
            Root::Input => "$".to_string(),
            Root::Context => "$$".to_string(),
            Root::Variable(name) => format!("${name}"),
        };
        for segment in &self.segments {
            match segment {
                Segment::Field(name) => out.push_str(&format!("['{name}']")),
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                Segment::Wildcard => out.push_str("[*]"),
                Segment::Descend(Some(name)) => out.push_str(&format!("..['{name}']")),
                Segment::Descend(None) => out.push_str("..[*]"),
                Segment::FromEnd(n) => out.push_str(&format!("[-{n}]")),
                Segment::Slice(a, b, c) => {
                    let part = |p: &Option<i64>| p.map(|n| n.to_string()).unwrap_or_default();
                    out.push_str(&format!("[{}:{}", part(a), part(b)));
                    if c.is_some() {
                        out.push_str(&format!(":{}", part(c)));
                    }
                    out.push(']');
                }
                Segment::Union(keys) => {
                    let keys: Vec<String> = keys
                        .iter()
                        .map(|k| match k {
                            Key::Index(i) => i.to_string(),
                            Key::Name(n) => format!("'{n}'"),
                        })
                        .collect();
                    out.push_str(&format!("[{}]", keys.join(",")));
                }
                Segment::Filter(text, _) => out.push_str(&format!("[?({text})]")),
            }
        }
        out
    }

    /// Reads the path against `input` (for `$`) or `context` (for `$$`).
    ///
    /// A reference path yields the node it names, or `None` when there is none. Any other path
    /// yields an array of every node it matches, or `TooLarge` when that would be more than a
    /// state's output may hold.
    pub(crate) fn select(&self, input: &Value, context: &Value) -> Result<Option<Value>, TooLarge> {
        let root = match &self.root {
            Root::Input => input,
            Root::Context if self.segments.is_empty() => {
                let mut whole = context.clone();
                if let Some(o) = whole.as_object_mut() {
                    o.remove(VARIABLES);
                }
                return Ok(Some(whole));
            }
            Root::Context => context,
            Root::Variable(name) => match context.get(VARIABLES).and_then(|v| v.get(name)) {
                Some(value) => value,
                None => return Ok(None),
            },
        };
        if self.is_definite() {
            let mut node = root;
            for segment in &self.segments {
                match step(node, segment, root).into_iter().next() {
                    Some(next) => node = next,
                    None => return Ok(None),
                }
            }
            return Ok(Some(node.clone()));
        }
        let too_large = || TooLarge {
            path: self.text.clone(),
        };
        let mut nodes = vec![root];
        for segment in &self.segments {
            let mut next = Vec::new();
            for node in nodes {
                next.extend(step(node, segment, root));
                if next.len() > MAX_SELECTED {
                    return Err(too_large());
                }
            }
            nodes = next;
        }
        // The copies may repeat large subtrees (`$[0,0,0]`, `$..*`): weigh them first.
        let mut budget = MAX_PAYLOAD_BYTES;
        if !nodes.iter().all(|node| weigh(node, &mut budget)) {
            return Err(too_large());
        }
        Ok(Some(Value::Array(nodes.into_iter().cloned().collect())))
    }

    /// Returns `target` with `value` written at this (reference) path, creating missing
    /// objects on the way. `$` replaces the whole target.
    pub(crate) fn put(&self, target: Value, value: Value) -> Result<Value, ResultPathMismatch> {
        let mut out = target;
        if put_at(&mut out, &self.segments, value) {
            Ok(out)
        } else {
            Err(ResultPathMismatch {
                path: self.text.clone(),
                input: out.to_string(),
            })
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A dot-notation field name: everything up to the next `.`, `[` or `]`; never empty.
fn take_name(s: &str) -> Option<(&str, &str)> {
    let end = s.find(['.', '[', ']']).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// The inside of `[…]` (the `[` already consumed) and what follows the `]`.
fn bracket(s: &str) -> Result<(Segment, &str), String> {
    if let Some(quote) = s.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let mut name = String::new();
        let mut chars = s[1..].char_indices();
        let mut union = false;
        while let Some((i, c)) = chars.next() {
            match c {
                // Only the quote is escaped; any other backslash is part of the name, as AWS
                // reads `['a\"b']`.
                '\\' => match chars.next() {
                    Some((_, escaped)) if escaped == quote => name.push(escaped),
                    Some((_, other)) => {
                        name.push('\\');
                        name.push(other);
                    }
                    None => return Err("unterminated quoted field name".into()),
                },
                c if c == quote => {
                    let after = &s[1 + i + 1..];
                    if let Some(rest) = after.strip_prefix(']') {
                        return Ok((Segment::Field(name), rest));
                    }
                    if !after.trim_start().starts_with(',') {
                        return Err("expected ']' after a quoted field name".into());
                    }
                    // `['a','b']`: a union of names, read below.
                    union = true;
                    break;
                }
                c => name.push(c),
            }
        }
        if !union {
            return Err("unterminated quoted field name".into());
        }
    }
    if let Some(body) = s.strip_prefix("?(") {
        return filter_segment(body);
    }
    let Some(end) = s.find(']') else {
        return Err("'[' without a matching ']'".into());
    };
    let (inside, rest) = (s[..end].trim(), &s[end + 1..]);
    if inside == "*" {
        return Ok((Segment::Wildcard, rest));
    }
    if inside.starts_with('(') {
        return Err("script expressions are not supported".into());
    }
    if inside.contains(':') {
        let parts: Vec<&str> = inside.split(':').map(str::trim).collect();
        if parts.len() > 3 {
            return Err("a slice has at most start:end:step".into());
        }
        let number = |p: &str| -> Result<Option<i64>, String> {
            if p.is_empty() {
                Ok(None)
            } else {
                p.parse()
                    .map(Some)
                    .map_err(|_| format!("'{p}' is not a slice bound"))
            }
        };
        let step = number(parts.get(2).copied().unwrap_or(""))?;
        if step == Some(0) {
            return Err("a slice step cannot be 0".into());
        }
        return Ok((
            Segment::Slice(number(parts[0])?, number(parts[1])?, step),
            rest,
        ));
    }
    if inside.contains(',') {
        let keys = inside
            .split(',')
            .map(|k| {
                let k = k.trim();
                match k.chars().next() {
                    Some(q @ ('\'' | '"')) if k.len() >= 2 && k.ends_with(q) => {
                        Ok(Key::Name(k[1..k.len() - 1].to_string()))
                    }
                    _ => k
                        .parse()
                        .map(Key::Index)
                        .map_err(|_| format!("'{k}' is not an index or a quoted name")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((Segment::Union(keys), rest));
    }
    if let Some(n) = inside.strip_prefix('-') {
        return match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok((Segment::FromEnd(n), rest)),
            _ => Err(format!("'{inside}' is not an array index")),
        };
    }
    if !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit()) {
        return inside
            .parse()
            .map(|i| (Segment::Index(i), rest))
            .map_err(|_| "array index is too large".into());
    }
    Err("expected an array index, '*' or a quoted field name inside '[…]'".into())
}

/// `[?(…)]` after the `[?(`: the expression runs to the `)` that closes it, then `]`.
fn filter_segment(s: &str) -> Result<(Segment, &str), String> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth > 0 => depth -= 1,
            (None, ')') => {
                let text = s[..i].trim();
                let rest = s[i + 1..]
                    .strip_prefix(']')
                    .ok_or("expected ']' after a filter")?;
                let expr = filter::parse(text)?;
                return Ok((Segment::Filter(text.to_string(), Box::new(expr)), rest));
            }
            _ => {}
        }
    }
    Err("a filter '[?(' is not closed".into())
}

/// The nodes one segment of an indefinite path reaches from `node`.
fn step<'a>(node: &'a Value, segment: &Segment, root: &'a Value) -> Vec<&'a Value> {
    let from_end = |items: &'a [Value], n: u64| {
        usize::try_from(n)
            .ok()
            .and_then(|n| items.len().checked_sub(n))
            .and_then(|i| items.get(i))
    };
    match segment {
        Segment::Field(name) => node
            .as_object()
            .and_then(|o| o.get(name))
            .into_iter()
            .collect(),
        Segment::Index(i) => node
            .as_array()
            .and_then(|a| a.get(*i))
            .into_iter()
            .collect(),
        Segment::Wildcard => children(node),
        Segment::Descend(name) => {
            let mut found = Vec::new();
            descend(node, name.as_deref(), &mut found);
            found
        }
        Segment::FromEnd(n) => node
            .as_array()
            .and_then(|a| from_end(a, *n as u64))
            .into_iter()
            .collect(),
        Segment::Slice(start, end, step) => node
            .as_array()
            .map(|a| slice(a, *start, *end, step.unwrap_or(1)))
            .unwrap_or_default(),
        Segment::Union(keys) => keys
            .iter()
            .filter_map(|key| match (key, node) {
                (Key::Name(name), Value::Object(o)) => o.get(name),
                (Key::Index(i), Value::Array(a)) if *i < 0 => from_end(a, i.unsigned_abs()),
                (Key::Index(i), Value::Array(a)) => a.get(*i as usize),
                _ => None,
            })
            .collect(),
        Segment::Filter(_, expr) => match node {
            Value::Array(items) => items.iter().filter(|c| expr.matches(c, root)).collect(),
            other if expr.matches(other, root) => vec![other],
            _ => Vec::new(),
        },
    }
}

/// Python-style slice of `items`: negative bounds count from the end; a negative step walks
/// backwards.
fn slice(items: &[Value], start: Option<i64>, end: Option<i64>, step: i64) -> Vec<&Value> {
    let len = items.len() as i64;
    let clamp = |i: i64, low: i64, high: i64| {
        let i = if i < 0 { i.saturating_add(len) } else { i };
        i.clamp(low, high)
    };
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, stop) = (
            start.map_or(0, |s| clamp(s, 0, len)),
            end.map_or(len, |e| clamp(e, 0, len)),
        );
        while i < stop {
            out.push(&items[i as usize]);
            let Some(next) = i.checked_add(step) else {
                break;
            };
            i = next;
        }
    } else {
        let (mut i, stop) = (
            start.map_or(len - 1, |s| clamp(s, -1, len - 1)),
            end.map_or(-1, |e| clamp(e, -1, len - 1)),
        );
        while i > stop {
            out.push(&items[i as usize]);
            let Some(next) = i.checked_add(step) else {
                break;
            };
            i = next;
        }
    }
    out
}

/// Takes at least the size of `node` as JSON text (a byte per scalar, plus the length of
/// strings and keys) from `budget`; false once the budget is spent. Walks without recursion.
fn weigh(node: &Value, budget: &mut usize) -> bool {
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        let cost = match node {
            Value::String(s) => s.len() + 2,
            Value::Object(o) => {
                pending.extend(o.values());
                o.keys().map(|k| k.len() + 3).sum::<usize>() + 2
            }
            Value::Array(a) => {
                pending.extend(a.iter());
                a.len() + 2
            }
            _ => 1,
        };
        match budget.checked_sub(cost) {
            Some(left) => *budget = left,
            None => return false,
        }
    }
    true
}

fn children(node: &Value) -> Vec<&Value> {
    match node {
        Value::Object(o) => o.values().collect(),
        Value::Array(a) => a.iter().collect(),
        _ => Vec::new(),
    }
}

/// Collects, in document order, `name` fields of `node` and all its descendants (or every
/// descendant when `name` is `None`).
fn descend<'a>(node: &'a Value, name: Option<&str>, found: &mut Vec<&'a Value>) {
    if let (Some(name), Value::Object(o)) = (name, node) {
        if let Some(v) = o.get(name) {
            found.push(v);
        }
    }
    for child in children(node) {
        if name.is_none() {
            found.push(child);
        }
        descend(child, name, found);
    }
}

fn put_at(node: &mut Value, segments: &[Segment], value: Value) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        *node = value;
        return true;
    };
    match (first, node) {
        (Segment::Field(name), Value::Object(o)) => {
            if rest.is_empty() {
                o.insert(name.clone(), value);
                return true;
            }
            let child = o
                .entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            put_at(child, rest, value)
        }
        (Segment::Index(i), Value::Array(a)) => match a.get_mut(*i) {
            Some(child) => put_at(child, rest, value),
            None => false,
        },
        _ => false,
    }
}

/// A payload template (`Parameters`, `ResultSelector`) with its `"key.$"` fields parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Template {
    /// A value copied as is.
    Literal(Value),
    /// An object; keys are the output keys (".$" already removed from dynamic ones).
    Object(Vec<(String, Template)>),
    /// An array whose elements may themselves hold dynamic fields.
    Array(Vec<Template>),
    /// `"field.$": "$.path"` or `"$$.path"`.
    Path { field: String, path: Path },
    /// `"field.$": "States.Format(…)"` and the other intrinsic functions.
    Intrinsic { field: String, call: Call },
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// A path in a `"key.$"` field matched nothing.
    #[error("The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{input}'")]
    PathNotFound {
        path: String,
        field: String,
        input: String,
    },
    /// A path selected more than a state's output may hold.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// An intrinsic function failed: AWS's `States.IntrinsicFailure`.
    #[error("The intrinsic function in the field '{field}' failed. {error}")]
    Intrinsic {
        field: String,
        error: IntrinsicError,
    },
}

impl Template {
    /// Parses a template of `owner` (e.g. `State "Foo"`) found at `location`, recording a
    /// problem for every `"key.$"` field whose value is not a valid path or intrinsic.
    pub(crate) fn parse(
        value: &Value,
        owner: &str,
        location: &str,
        problems: &mut Vec<Problem>,
    ) -> Template {
        match value {
            Value::Object(o) => Template::Object(
                o.iter()
                    .map(|(key, v)| {
                        let here = format!("{location}/{key}");
                        match key.strip_suffix(".$") {
                            Some(out_key) => {
                                (out_key.to_string(), dynamic(owner, key, v, &here, problems))
                            }
                            None => (key.clone(), Template::parse(v, owner, &here, problems)),
                        }
                    })
                    .collect(),
            ),
            Value::Array(a) => Template::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Template::parse(v, owner, &format!("{location}[{i}]"), problems))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// Renders the template against `input` (for `$`) and `context` (for `$$`); `rng` feeds
    /// `States.UUID` and `States.MathRandom`.
    pub(crate) fn render(
        &self,
        input: &Value,
        context: &Value,
        rng: &mut Random,
    ) -> Result<Value, TemplateError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Object(fields) => {
                let mut out = Map::new();
                for (key, template) in fields {
                    out.insert(key.clone(), template.render(input, context, rng)?);
                }
                Value::Object(out)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.render(input, context, rng))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Path { field, path } => {
                path.select(input, context)?
                    .ok_or_else(|| TemplateError::PathNotFound {
                        path: path.text().to_string(),
                        field: field.clone(),
                        // AWS shows the state's input even for a `$$` path.
                        input: input.to_string(),
                    })?
            }
            Template::Intrinsic { field, call } => {
                let mut scope = Scope {
                    input,
                    context,
                    rng,
                };
                call.eval(&mut scope).map_err(|e| match e {
                    EvalError::PathNotFound(path) => TemplateError::PathNotFound {
                        input: input.to_string(),
                        path,
                        field: field.clone(),
                    },
                    EvalError::Failed(error) => TemplateError::Intrinsic {
                        field: field.clone(),
                        error,
                    },
                    EvalError::TooLarge(e) => TemplateError::TooLarge(e),
                })?
            }
        })
    }
}

/// The value of a `"key.$"` field: a path or an intrinsic function.
fn dynamic(
    owner: &str,
    key: &str,
    value: &Value,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Template {
    let field = key.to_string();
    let placeholder = Template::Literal(Value::Null);
    let Some(text) = value.as_str() else {
        problems.push(Problem::schema(
            location,
            format!("{owner}: the field '{key}' ends in '.$', so its value must be a path or an intrinsic function string"),
        ));
        return placeholder;
    };
    if text.starts_with("States.") {
        return match intrinsics::parse(text) {
            Ok(call) => Template::Intrinsic { field, call },
            Err(e) => {
                problems.push(Problem::schema(
                    location,
                    format!(
                        "{owner}: the field '{key}' holds an invalid intrinsic function call: {e}"
                    ),
                ));
                placeholder
            }
        };
    }
    match Path::parse(text) {
        Ok(path) => Template::Path { field, path },
        Err(e) => {
            problems.push(Problem::schema(
                location,
                format!("{owner}: the field '{key}' must hold a valid JSONPath or intrinsic function: {e}"),
            ));
            placeholder
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn path(text: &str) -> Path {
        match Path::parse(text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn reference_paths_read_fields_indexes_and_quoted_names() {
        let input = json!({"a": {"b c": [10, {"d": "x"}]}, "e.f": 1});
        let cases = [
            ("$", input.clone()),
            ("$.a['b c'][0]", json!(10)),
            ("$.a[\"b c\"][1].d", json!("x")),
            ("$['e.f']", json!(1)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                path(text).select(&input, &Value::Null).unwrap(),
                Some(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn reference_path_to_a_missing_node_selects_nothing() {
        let input = json!({"a": [1]});
        for text in ["$.b", "$.a[1]", "$.a.b", "$.a[0].c"] {
            assert_eq!(
                path(text).select(&input, &Value::Null).unwrap(),
                None,
                "{text}"
            );
        }
    }

    #[test]
    fn double_dollar_reads_the_context() {
        let context = json!({"Execution": {"Name": "run-1"}});
        let p = path("$$.Execution.Name");
        assert!(p.is_context());
        assert_eq!(
            p.select(&json!({}), &context).unwrap(),
            Some(json!("run-1"))
        );
    }

    #[test]
    fn wildcards_and_descent_select_arrays_in_document_order() {
        let input = json!({"items": [{"id": 1}, {"id": 2, "sub": {"id": 3}}]});
        assert_eq!(
            path("$.items[*].id").select(&input, &Value::Null).unwrap(),
            Some(json!([1, 2]))
        );
        assert_eq!(
            path("$..id").select(&input, &Value::Null).unwrap(),
            Some(json!([1, 2, 3]))
        );
        assert_eq!(
            path("$.nothing[*]").select(&input, &Value::Null).unwrap(),
            Some(json!([]))
        );
        assert!(!path("$.items[*]").is_reference());
    }

    #[test]
    fn unsupported_and_malformed_paths_are_refused_with_a_reason() {
        for text in [
            "a.b",
            "$.",
            "$9a",
            "$[?(@.x]",
            "$[?(@.x <)]",
            "$[(@.length-1)]",
            "$[0:2:0]",
            "$[1:2:3:4]",
            "$[0,x]",
            "$[-0]",
            "$['a'",
            "$[x]",
        ] {
            assert!(Path::parse(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn variable_paths_read_the_variables_carried_in_the_context() {
        let context = json!({VARIABLES: {"order": {"lines": [1, 2]}}, "Execution": {"Id": "e"}});
        let p = path("$order.lines[1]");
        assert!(p.is_variable() && p.is_reference());
        assert_eq!(p.select(&Value::Null, &context).unwrap(), Some(json!(2)));
        assert_eq!(
            path("$missing").select(&Value::Null, &context).unwrap(),
            None
        );
        assert_eq!(
            path("$$").select(&Value::Null, &context).unwrap(),
            Some(json!({"Execution": {"Id": "e"}})),
            "variables are not part of $$"
        );
    }

    #[test]
    fn jayway_extras_slices_unions_negative_indexes_and_filters() {
        let store = json!({"book": [
            {"title": "A", "price": 8.95, "category": "reference"},
            {"title": "B", "price": 12.99, "category": "fiction", "isbn": "1"},
            {"title": "C", "price": 8.99, "category": "fiction", "isbn": "2"},
            {"title": "D", "price": 22.99, "category": "fiction"}
        ], "limit": 10});
        let titles = |p: &str| {
            path(p)
                .select(&store, &Value::Null)
                .unwrap()
                .unwrap_or_else(|| panic!("{p} selects something"))
        };
        assert_eq!(
            titles("$.book[-1].title"),
            json!("D"),
            "[-n] names one node"
        );
        assert_eq!(titles("$.book[1:3].title"), json!(["B", "C"]));
        assert_eq!(titles("$.book[:2].title"), json!(["A", "B"]));
        assert_eq!(titles("$.book[-2:].title"), json!(["C", "D"]));
        assert_eq!(titles("$.book[::-2].title"), json!(["D", "B"]));
        assert_eq!(titles("$.book[0,2].title"), json!(["A", "C"]));
        assert_eq!(titles("$.book[0]['title','price']"), json!(["A", 8.95]));
        assert_eq!(titles("$.book[?(@.price < 10)].title"), json!(["A", "C"]));
        assert_eq!(titles("$.book[?(@.isbn)].title"), json!(["B", "C"]));
        assert_eq!(
            titles("$.book[?(@.category == 'fiction' && @.price > $.limit)].title"),
            json!(["B", "D"])
        );
        assert_eq!(titles("$..book[?(@.title == 'Z')]"), json!([]));
        assert!(
            !path("$.book[-1]").is_reference(),
            "not allowed as a ResultPath"
        );
        assert_eq!(
            path("$.book[?(@.price < 10)][1:]['a','b'][-1]").canonical(),
            "$['book'][?(@.price < 10)][1:]['a','b'][-1]"
        );
    }

    #[test]
    fn canonical_form_brackets_every_step() {
        assert_eq!(path("$.a[0].b").canonical(), "$['a'][0]['b']");
    }

    #[test]
    fn put_creates_missing_objects_and_refuses_non_objects() {
        let out = path("$.a.b").put(json!({"x": 1}), json!(2));
        assert_eq!(out, Ok(json!({"x": 1, "a": {"b": 2}})));
        assert!(path("$.x.y").put(json!({"x": 1}), json!(2)).is_err());
        assert!(path("$.a").put(json!("text"), json!(2)).is_err());
        assert_eq!(
            path("$.l[1]").put(json!({"l": [0, 0]}), json!(5)),
            Ok(json!({"l": [0, 5]}))
        );
        assert!(path("$.l[2]").put(json!({"l": [0, 0]}), json!(5)).is_err());
    }

    #[test]
    fn template_renders_paths_context_and_nested_arrays() {
        let mut problems = Vec::new();
        let t = Template::parse(
            &json!({
                "fixed": {"k": "v"},
                "who.$": "$.name",
                "list": [{"n.$": "$.n"}, 3],
                "exec.$": "$$.Execution.Id"
            }),
            "State \"S\"",
            "/Parameters",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let out = t.render(
            &json!({"name": "Ada", "n": 7}),
            &json!({"Execution": {"Id": "e1"}}),
            &mut Random::new(0),
        );
        assert_eq!(
            out,
            Ok(json!({"fixed": {"k": "v"}, "who": "Ada", "list": [{"n": 7}, 3], "exec": "e1"}))
        );
    }

    #[test]
    fn template_path_matching_nothing_names_path_field_and_input() {
        let t = Template::parse(
            &json!({"x.$": "$.x"}),
            "State \"S\"",
            "/Parameters",
            &mut Vec::new(),
        );
        let err = t.render(&json!({"a": 1}), &Value::Null, &mut Random::new(0));
        let message = err.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert_eq!(
            message,
            r#"The JSONPath '$.x' specified for the field 'x.$' could not be found in the input '{"a":1}'"#
        );
    }

    #[test]
    fn template_with_bad_dynamic_values_reports_each_location() {
        let mut problems = Vec::new();
        Template::parse(
            &json!({"a.$": 3, "b": {"c.$": "nope"}, "d.$": "States.Format('x')", "e.$": "States.Nope()"}),
            "State \"P\"",
            "/States/P/Parameters",
            &mut problems,
        );
        assert!(problems
            .iter()
            .all(|p| p.message.starts_with("State \"P\": ")));
        let locations: Vec<_> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "/States/P/Parameters/a.$",
                "/States/P/Parameters/b/c.$",
                "/States/P/Parameters/e.$"
            ]
        );
    }

    #[test]
    fn template_intrinsics_render_and_their_failures_name_the_field() {
        let t = Template::parse(
            &json!({"m.$": "States.Format('hi {}', $.n)", "i.$": "States.ArrayGetItem($.l, 3)"}),
            "State \"S\"",
            "",
            &mut Vec::new(),
        );
        let err = t.render(&json!({"n": 1, "l": []}), &Value::Null, &mut Random::new(0));
        let Err(TemplateError::Intrinsic { field, .. }) = err else {
            panic!("expected an intrinsic failure, got {err:?}");
        };
        assert_eq!(field, "i.$");
        let ok = t.render(
            &json!({"n": 1, "l": [0, 1, 2, 3]}),
            &Value::Null,
            &mut Random::new(0),
        );
        assert_eq!(ok, Ok(json!({"m": "hi 1", "i": 3})));
    }

    fn field_name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(field_name(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn dollar_selects_the_input_unchanged(input in json_value()) {
            prop_assert_eq!(path("$").select(&input, &Value::Null).unwrap(), Some(input));
        }

        #[test]
        fn dollar_result_path_replaces_the_input(input in json_value(), result in json_value()) {
            prop_assert_eq!(path("$").put(input, result.clone()), Ok(result));
        }

        #[test]
        fn value_put_at_a_field_path_reads_back(
            base in prop::collection::btree_map(field_name(), json_value(), 0..4),
            names in prop::collection::vec(field_name(), 1..4),
            value in json_value(),
        ) {
            let text = format!("$.{}", names.join("."));
            let p = path(&text);
            let input = Value::Object(base.into_iter().collect());
            // A put may meet a non-object on the way; when it succeeds the value must be there.
            if let Ok(out) = p.put(input, value.clone()) {
                prop_assert_eq!(p.select(&out, &Value::Null).unwrap(), Some(value));
            }
        }

        #[test]
        fn put_into_fresh_objects_always_succeeds(
            names in prop::collection::vec(field_name(), 1..5),
            value in json_value(),
        ) {
            let p = path(&format!("$.{}", names.join(".")));
            let out = p.put(json!({}), value.clone());
            prop_assert!(out.is_ok());
            prop_assert_eq!(out.ok().and_then(|o| p.select(&o, &Value::Null).unwrap()), Some(value));
        }

        #[test]
        fn dotted_and_bracketed_spellings_select_the_same(
            input in json_value(),
            names in prop::collection::vec(field_name(), 1..4),
        ) {
            let dotted = path(&format!("$.{}", names.join(".")));
            let bracketed = path(&format!("${}", names.iter().map(|n| format!("['{n}']")).collect::<String>()));
            prop_assert_eq!(dotted.select(&input, &Value::Null).unwrap(), bracketed.select(&input, &Value::Null).unwrap());
            prop_assert_eq!(dotted.canonical(), bracketed.canonical());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\$[ -~]{0,16}") {
            let _ = Path::parse(&text);
        }

        /// Paths built from JSONPath's own pieces, with numbers up to the extremes of i64,
        /// parse or are refused, and read any input, without panicking.
        #[test]
        fn any_path_of_jsonpath_pieces_reads_any_input_without_panicking(
            pieces in prop::collection::vec(path_piece(), 0..12),
            input in json_value(),
            context in json_value(),
        ) {
            let text = format!("${}", pieces.concat());
            if let Ok(p) = Path::parse(&text) {
                let _ = p.select(&input, &context);
                let _ = p.put(input.clone(), json!(1));
                let _ = p.canonical();
            }
        }
    }

    fn extreme_number() -> impl Strategy<Value = String> {
        prop_oneof![
            (-5i64..5).prop_map(|n| n.to_string()),
            prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX])
                .prop_map(|n| n.to_string()),
            Just("99999999999999999999".to_string()),
            Just(String::new()),
        ]
    }

    fn path_piece() -> impl Strategy<Value = String> {
        let filter_piece = prop::sample::select(vec![
            "@.a",
            "@",
            "$.b",
            "!",
            "(",
            ")",
            " && ",
            " || ",
            " < ",
            " == ",
            "'x'",
            "1",
            "@['a']",
            "@[-1]",
            "@[9223372036854775807]",
        ]);
        prop_oneof![
            field_name().prop_map(|n| format!(".{n}")),
            Just(".*".to_string()),
            Just("..*".to_string()),
            field_name().prop_map(|n| format!("..{n}")),
            extreme_number().prop_map(|n| format!("[{n}]")),
            (extreme_number(), extreme_number(), extreme_number())
                .prop_map(|(a, b, c)| format!("[{a}:{b}:{c}]")),
            (extreme_number(), extreme_number()).prop_map(|(a, b)| format!("[{a},{b}]")),
            prop::collection::vec(filter_piece, 0..8)
                .prop_map(|parts| format!("[?({})]", parts.concat())),
            prop::sample::select(vec!["[", "]", "['a", "[*]", "['a','b']", "[?(", "."])
                .prop_map(str::to_string),
        ]
    }

    #[test]
    fn slices_with_extreme_bounds_and_steps_do_not_overflow() {
        let input = json!({"a": [0, 1, 2, 3, 4]});
        let read = |text: &str| path(text).select(&input, &Value::Null).unwrap().unwrap();
        assert_eq!(read("$.a[1::9223372036854775807]"), json!([1]));
        assert_eq!(read("$.a[-1::-9223372036854775808]"), json!([4]));
        assert_eq!(
            read("$.a[-9223372036854775808:9223372036854775807:2]"),
            json!([0, 2, 4])
        );
        assert_eq!(
            read("$.a[9223372036854775807:-9223372036854775808:-1]"),
            json!([4, 3, 2, 1, 0])
        );
        assert_eq!(
            read("$.a[-9223372036854775807,9223372036854775807]"),
            json!([])
        );
    }

    #[test]
    fn paths_have_at_most_max_segments_steps() {
        let steps = |n: usize| format!("${}", ".a".repeat(n));
        assert!(Path::parse(&steps(MAX_SEGMENTS)).is_ok());
        let err = Path::parse(&steps(MAX_SEGMENTS + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 64 steps"), "{err}");
        assert!(Path::parse(&format!("${}", "[0]".repeat(500_000))).is_err());
    }

    #[test]
    fn selections_that_multiply_past_the_output_limit_are_refused() {
        // 400 leaves: `..*..*` stays small, but a union repeating a 300 KB subtree does not.
        let leaves: Vec<Value> = (0..400).map(|i| json!({"v": i})).collect();
        let input = json!({"items": leaves});
        let small = path("$..v").select(&input, &Value::Null).unwrap().unwrap();
        assert_eq!(small.as_array().unwrap().len(), 400);
        let big = json!({"s": ["x".repeat(100_000)]});
        assert!(path("$.s[0,0]").select(&big, &Value::Null).is_ok());
        let err = path("$.s[0,0,0]").select(&big, &Value::Null).unwrap_err();
        assert!(err.to_string().contains("selects more than"), "{err}");
        // Each `..*` multiplies the nodes in hand by up to the depth: refused past the cap.
        let mut deep = json!(0);
        for _ in 0..99 {
            let copy = deep.clone();
            deep = json!([copy, deep]);
            if deep.to_string().len() > 100_000 {
                break;
            }
        }
        let err = path("$..*..*..*..*")
            .select(&deep, &Value::Null)
            .unwrap_err();
        assert!(err.to_string().contains("100000 nodes"), "{err}");
    }
}
