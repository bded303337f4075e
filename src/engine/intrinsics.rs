//! Intrinsic functions: `"key.$": "States.Format('Hello {}', $.name)"` and the rest of the
//! `States.*` family, parsed when the definition is and evaluated when a payload template is
//! rendered. Failures are `States.IntrinsicFailure`.
//!
//! Arguments are string literals in single quotes (escapes `\'`, `\{`, `\}`, `\\`), numbers,
//! `true`, `false`, `null`, paths (`$.x`, `$$.Execution.Id`) and nested calls (up to 10 deep).
//! Randomness (`States.UUID`, `States.MathRandom` without a seed) comes from a seed the caller
//! supplies, so the engine stays deterministic.

use super::paths::{Path, TooLarge};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The deepest nesting AWS accepts.
const MAX_NESTING: usize = 10;
/// Longest string `Base64Encode`, `Base64Decode` and `Hash` take.
const MAX_STRING: usize = 10_000;
/// Most items `ArrayRange` may produce.
const MAX_RANGE: usize = 1000;

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    function: Function,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A quoted string; `raw` keeps its escapes, which matter to `States.Format`.
    Str {
        raw: String,
    },
    Value(Value),
    Path(Path),
    Call(Call),
}

macro_rules! functions {
    ($($variant:ident = $name:literal ($min:literal, $max:expr)),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Function { $($variant),* }

        impl Function {
            #[cfg(test)]
            const ALL: &[Function] = &[$(Function::$variant),*];

            fn by_name(name: &str) -> Option<Function> {
                match name { $($name => Some(Function::$variant),)* _ => None }
            }
            fn name(self) -> &'static str {
                match self { $(Function::$variant => $name),* }
            }
            /// Fewest and most arguments (`usize::MAX` = any number).
            fn arity(self) -> (usize, usize) {
                match self { $(Function::$variant => ($min, $max)),* }
            }
        }
    };
}

functions! {
    Format = "States.Format" (1, usize::MAX),
    StringToJson = "States.StringToJson" (1, 1),
    JsonToString = "States.JsonToString" (1, 1),
    Array = "States.Array" (0, usize::MAX),
    ArrayPartition = "States.ArrayPartition" (2, 2),
    ArrayContains = "States.ArrayContains" (2, 2),
    ArrayRange = "States.ArrayRange" (3, 3),
    ArrayGetItem = "States.ArrayGetItem" (2, 2),
    ArrayLength = "States.ArrayLength" (1, 1),
    ArrayUnique = "States.ArrayUnique" (1, 1),
    Base64Encode = "States.Base64Encode" (1, 1),
    Base64Decode = "States.Base64Decode" (1, 1),
    Hash = "States.Hash" (2, 2),
    JsonMerge = "States.JsonMerge" (3, 3),
    MathRandom = "States.MathRandom" (2, 3),
    MathAdd = "States.MathAdd" (2, 2),
    StringSplit = "States.StringSplit" (2, 2),
    Uuid = "States.UUID" (0, 0),
}

/// Why an intrinsic call could not run: AWS's `States.IntrinsicFailure`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid arguments in {function}: {message}")]
pub(crate) struct IntrinsicError {
    function: &'static str,
    message: String,
}

impl IntrinsicError {
    fn new(function: Function, message: impl Into<String>) -> IntrinsicError {
        IntrinsicError {
            function: function.name(),
            message: message.into(),
        }
    }
}

/// A small deterministic generator (SplitMix64) behind `States.UUID` and `States.MathRandom`.
#[derive(Debug, Clone)]
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new(seed: u64) -> Random {
        Random(seed)
    }

    /// Where the generator is now, to carry it on later.
    pub(crate) fn state(&self) -> u64 {
        self.0
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)`, `n > 0`.
    fn below(&mut self, n: u64) -> u64 {
        // Rejection sampling keeps it uniform.
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses `text`, which must be one whole call such as `States.Array($.a, 'b')`.
pub(crate) fn parse(text: &str) -> Result<Call, String> {
    let mut p = Parser { text, pos: 0 };
    let call = p.call(1)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(format!(
            "unexpected '{}' after the end of the call",
            &text[p.pos..]
        ));
    }
    Ok(call)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "intrinsic functions may be nested at most {MAX_NESTING} deep"
            ));
        }
        let name_len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(self.rest().len());
        let name = &self.rest()[..name_len];
        let function = Function::by_name(name)
            .ok_or_else(|| format!("'{name}' is not an intrinsic function"))?;
        self.pos += name_len;
        self.skip_ws();
        if !self.eat('(') {
            return Err(format!("expected '(' after {name}"));
        }
        let mut args = Vec::new();
        self.skip_ws();
        if !self.eat(')') {
            loop {
                args.push(self.arg(depth)?);
                self.skip_ws();
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(format!("expected ',' or ')' in the arguments of {name}"));
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let expected = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} or {b}"),
            };
            return Err(format!(
                "{name} takes {expected} argument(s), not {}",
                args.len()
            ));
        }
        Ok(Call { function, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(_) if self.rest().starts_with("States.") => Ok(Arg::Call(self.call(depth + 1)?)),
            Some(_) => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.rest().starts_with(word) {
                        self.pos += word.len();
                        return Ok(Arg::Value(value));
                    }
                }
                Err(format!(
                    "unexpected '{}' where an argument belongs",
                    self.rest()
                ))
            }
            None => Err("the call is not closed with ')'".into()),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut raw = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('\'' | '{' | '}' | '\\'))) => {
                        raw.push('\\');
                        raw.push(e);
                    }
                    _ => {
                        return Err(
                            "a backslash in a string must escape one of ' { } \\".to_string()
                        )
                    }
                },
                '\'' => {
                    self.pos += i + 1;
                    return Ok(Arg::Str { raw });
                }
                c => raw.push(c),
            }
        }
        Err("a string argument is not closed with '".into())
    }

    fn number(&mut self) -> Result<Arg, String> {
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(self.rest().len());
        let text = &self.rest()[..len];
        let value: Value =
            serde_json::from_str(text).map_err(|_| format!("'{text}' is not a number"))?;
        if !value.is_number() {
            return Err(format!("'{text}' is not a number"));
        }
        self.pos += len;
        Ok(Arg::Value(value))
    }

    /// A path runs to the next `,` or `)` outside brackets and quotes.
    fn path(&mut self) -> Result<Arg, String> {
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut end = self.rest().len();
        for (i, c) in self.rest().char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[') => depth += 1,
                (None, ']') => depth = depth.saturating_sub(1),
                (None, ',' | ')') if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let text = self.rest()[..end].trim_end();
        let path = Path::parse(text).map_err(|e| e.to_string())?;
        self.pos += end;
        Ok(Arg::Path(path))
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// What a call may read: the state's input (`$`), the context object (`$$`) and randomness.
pub(crate) struct Scope<'a> {
    pub input: &'a Value,
    pub context: &'a Value,
    pub rng: &'a mut Random,
}

/// How a path argument that matched nothing is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EvalError {
    PathNotFound(String),
    Failed(IntrinsicError),
    TooLarge(TooLarge),
}

impl From<IntrinsicError> for EvalError {
    fn from(e: IntrinsicError) -> EvalError {
        EvalError::Failed(e)
    }
}

impl Call {
    pub(crate) fn eval(&self, scope: &mut Scope<'_>) -> Result<Value, EvalError> {
        let f = self.function;
        // States.Format reads its template's escapes itself.
        if f == Function::Format {
            let template = match &self.args[0] {
                Arg::Str { raw } => Template::Escaped(raw.clone()),
                other => match arg_value(other, scope)? {
                    Value::String(s) => Template::Plain(s),
                    v => {
                        return Err(IntrinsicError::new(
                            f,
                            format!("the template must be a string, not {}", kind(&v)),
                        )
                        .into())
                    }
                },
            };
            let values = self.args[1..]
                .iter()
                .map(|a| arg_value(a, scope))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Value::String(format(f, &template, &values)?));
        }
        let args = self
            .args
            .iter()
            .map(|a| arg_value(a, scope))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(apply(f, args, scope.rng)?)
    }
}

fn arg_value(arg: &Arg, scope: &mut Scope<'_>) -> Result<Value, EvalError> {
    match arg {
        Arg::Str { raw } => Ok(Value::String(unescape(raw))),
        Arg::Value(v) => Ok(v.clone()),
        Arg::Path(p) => p
            .select(scope.input, scope.context)
            .map_err(EvalError::TooLarge)?
            .ok_or_else(|| EvalError::PathNotFound(p.text().to_string())),
        Arg::Call(c) => c.eval(scope),
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(e) = chars.next() {
                out.push(e);
            }
        } else {
            out.push(c);
        }
    }
    out
}

enum Template {
    /// From a string literal: `\{` and `\}` are literal braces, `{}` a placeholder.
    Escaped(String),
    /// From a path or a nested call: every `{}` is a placeholder.
    Plain(String),
}

fn format(f: Function, template: &Template, values: &[Value]) -> Result<String, IntrinsicError> {
    let (text, escaped) = match template {
        Template::Escaped(t) => (t.as_str(), true),
        Template::Plain(t) => (t.as_str(), false),
    };
    let mut out = String::new();
    let mut used = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escaped => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let value = values.get(used).ok_or_else(|| {
                    IntrinsicError::new(
                        f,
                        format!(
                            "the template has more placeholders than the {} value(s) given",
                            values.len()
                        ),
                    )
                })?;
                out.push_str(&format_value(value));
                used += 1;
            }
            c => out.push(c),
        }
    }
    if used != values.len() {
        return Err(IntrinsicError::new(
            f,
            format!(
                "the template has {used} placeholder(s) but {} value(s) were given",
                values.len()
            ),
        ));
    }
    Ok(out)
}

/// How AWS prints a value into a `States.Format` template: strings as they are, arrays as
/// `[a, b]`, objects as `{key=value, …}`, anything else as JSON.
fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(format_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", format_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to evaluated arguments, each failing with a message naming the argument.
struct Args {
    f: Function,
    values: Vec<Value>,
}

impl Args {
    fn err(&self, message: impl Into<String>) -> IntrinsicError {
        IntrinsicError::new(self.f, message)
    }

    fn take(&mut self, i: usize) -> Value {
        std::mem::take(&mut self.values[i])
    }

    fn string(&mut self, i: usize, what: &str) -> Result<String, IntrinsicError> {
        match self.take(i) {
            Value::String(s) => Ok(s),
            v => Err(self.err(format!("{what} must be a string, not {}", kind(&v)))),
        }
    }

    fn array(&mut self, i: usize, what: &str) -> Result<Vec<Value>, IntrinsicError> {
        match self.take(i) {
            Value::Array(a) => Ok(a),
            v => Err(self.err(format!("{what} must be an array, not {}", kind(&v)))),
        }
    }

    fn object(&mut self, i: usize, what: &str) -> Result<Map<String, Value>, IntrinsicError> {
        match self.take(i) {
            Value::Object(o) => Ok(o),
            v => Err(self.err(format!("{what} must be a JSON object, not {}", kind(&v)))),
        }
    }

    /// A number cut to its whole part (AWS accepts `12.5` where it documents an integer).
    fn truncated(&self, i: usize, what: &str) -> Result<i64, IntrinsicError> {
        match self.values[i].as_f64() {
            Some(n) if n.abs() < 9.0e18 => Ok(n.trunc() as i64),
            _ => Err(self.err(format!("{what} must be a number, not {}", self.values[i]))),
        }
    }

    fn integer(&self, i: usize, what: &str) -> Result<i64, IntrinsicError> {
        self.values[i]
            .as_i64()
            .ok_or_else(|| self.err(format!("{what} must be an integer, not {}", self.values[i])))
    }

    /// A string no longer than AWS's 10,000-character limit.
    fn limited_string(&mut self, i: usize, what: &str) -> Result<String, IntrinsicError> {
        let s = self.string(i, what)?;
        let n = s.chars().count();
        if n > MAX_STRING {
            return Err(self.err(format!(
                "{what} may be at most {MAX_STRING} characters long, not {n}"
            )));
        }
        Ok(s)
    }
}

fn apply(f: Function, values: Vec<Value>, rng: &mut Random) -> Result<Value, IntrinsicError> {
    use base64::Engine as _;
    let mut a = Args { f, values };
    Ok(match f {
        // Call::eval formats before it gets here: the template needs its escapes.
        Function::Format => return Err(a.err("the template could not be read")),
        Function::StringToJson => {
            let s = a.string(0, "the argument")?;
            if s.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&s)
                    .map_err(|e| a.err(format!("the string is not valid JSON: {e}")))?
            }
        }
        Function::JsonToString => Value::String(a.take(0).to_string()),
        Function::Array => Value::Array(a.values),
        Function::ArrayPartition => {
            let size = a.integer(1, "the chunk size")?;
            if size <= 0 {
                return Err(a.err(format!(
                    "the chunk size must be a positive integer, not {size}"
                )));
            }
            let items = a.array(0, "the first argument")?;
            let chunks = items
                .chunks(usize::try_from(size).unwrap_or(usize::MAX))
                .map(|c| Value::Array(c.to_vec()))
                .collect();
            Value::Array(chunks)
        }
        Function::ArrayContains => {
            let needle = a.take(1);
            Value::Bool(a.array(0, "the first argument")?.contains(&needle))
        }
        Function::ArrayRange => {
            let (start, end, step) = (
                a.integer(0, "the first element")?,
                a.integer(1, "the last element")?,
                a.integer(2, "the increment")?,
            );
            if step == 0 {
                return Err(a.err("the increment must not be 0"));
            }
            let count = if (step > 0 && start > end) || (step < 0 && start < end) {
                0
            } else {
                (end.abs_diff(start) / step.unsigned_abs()).saturating_add(1)
            };
            if count > MAX_RANGE as u64 {
                return Err(a.err(format!(
                    "the range would have {count} items; at most {MAX_RANGE} are allowed"
                )));
            }
            Value::Array(
                // Every item lies between start and end, but `i * step` alone may not fit.
                (0..i128::from(count))
                    .map(|i| Value::from((i128::from(start) + i * i128::from(step)) as i64))
                    .collect(),
            )
        }
        Function::ArrayGetItem => {
            let index = a.integer(1, "the index")?;
            let items = a.array(0, "the first argument")?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .ok_or_else(|| {
                    a.err(format!(
                        "the index {index} is out of bounds for an array of length {}",
                        items.len()
                    ))
                })?
        }
        Function::ArrayLength => Value::from(a.array(0, "the argument")?.len()),
        Function::ArrayUnique => {
            let mut unique: Vec<Value> = Vec::new();
            for item in a.array(0, "the argument")? {
                if !unique.contains(&item) {
                    unique.push(item);
                }
            }
            Value::Array(unique)
        }
        Function::Base64Encode => {
            let s = a.limited_string(0, "the input")?;
            Value::String(base64::engine::general_purpose::STANDARD.encode(s))
        }
        Function::Base64Decode => {
            let s = a.limited_string(0, "the input")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| a.err(format!("the input is not valid base64: {e}")))?;
            Value::String(
                String::from_utf8(bytes)
                    .map_err(|_| a.err("the decoded bytes are not UTF-8 text"))?,
            )
        }
        Function::Hash => {
            let algorithm = a.string(1, "the algorithm")?;
            let data = a.limited_string(0, "the data")?;
            Value::String(hash(&algorithm, data.as_bytes()).ok_or_else(|| {
                a.err(format!(
                    "unknown algorithm '{algorithm}'; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
                ))
            })?)
        }
        Function::JsonMerge => {
            match a.take(2) {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(a.err(
                        "only shallow merging is supported: the third argument must be false",
                    ))
                }
                v => {
                    return Err(a.err(format!(
                        "the third argument must be the boolean false, not {}",
                        kind(&v)
                    )))
                }
            }
            let mut first = a.object(0, "the first argument")?;
            let second = a.object(1, "the second argument")?;
            first.extend(second);
            Value::Object(first)
        }
        Function::MathRandom => {
            let start = a.truncated(0, "the start")?;
            let end = a.truncated(1, "the end")?;
            if end <= start {
                return Err(a.err(format!(
                    "the end ({end}) must be greater than the start ({start})"
                )));
            }
            let value = if a.values.len() == 3 {
                let seed = a.truncated(2, "the seed")?;
                Random::new(seed as u64).below(end.abs_diff(start))
            } else {
                rng.below(end.abs_diff(start))
            };
            Value::from(start.wrapping_add(value as i64))
        }
        Function::MathAdd => {
            let x = a.truncated(0, "the first argument")?;
            let y = a.truncated(1, "the second argument")?;
            for v in [x, y] {
                if i32::try_from(v).is_err() {
                    return Err(a.err(format!("{v} is outside the range of 32-bit integers")));
                }
            }
            Value::Number(Number::from(x + y))
        }
        Function::StringSplit => {
            let delimiters = a.string(1, "the delimiter")?;
            let text = a.string(0, "the first argument")?;
            Value::Array(
                text.split(|c| delimiters.contains(c))
                    .filter(|part| !part.is_empty())
                    .map(|part| Value::String(part.to_string()))
                    .collect(),
            )
        }
        Function::Uuid => Value::String(uuid_v4(rng)),
    })
}

pub(crate) fn hash(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest;
    Some(match algorithm {
        "MD5" => hex::encode(md5::Md5::digest(data)),
        "SHA-1" => hex::encode(sha1::Sha1::digest(data)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(data)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(data)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// A version-4 UUID from the generator.
pub(crate) fn uuid_v4(rng: &mut Random) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
    bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn eval_with(text: &str, input: Value) -> Result<Value, EvalError> {
        let call = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut rng = Random::new(7);
        let context = json!({"Execution": {"Id": "arn:exec"}});
        call.eval(&mut Scope {
            input: &input,
            context: &context,
            rng: &mut rng,
        })
    }

    fn eval(text: &str, input: Value) -> Value {
        eval_with(text, input).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn fails(text: &str, input: Value) -> String {
        match eval_with(text, input) {
            Err(EvalError::Failed(e)) => e.to_string(),
            other => panic!("{text} should fail, got {other:?}"),
        }
    }

    #[test]
    fn the_documentation_examples_give_the_documented_results() {
        let cases = [
            (
                "States.Format('Hello, my name is {}.', $.name)",
                json!({"name": "Arnav"}),
                json!("Hello, my name is Arnav."),
            ),
            (
                "States.Format($.template, $.name)",
                json!({"name": "Arnav", "template": "Hello, my name is {}."}),
                json!("Hello, my name is Arnav."),
            ),
            (
                "States.StringToJson($.s)",
                json!({"s": "{\"foo\": \"bar\"}"}),
                json!({"foo": "bar"}),
            ),
            (
                "States.JsonToString($.j)",
                json!({"j": {"foo": "bar"}}),
                json!("{\"foo\":\"bar\"}"),
            ),
            ("States.Array($.Id)", json!({"Id": 123456}), json!([123456])),
            (
                "States.ArrayPartition($.a, 4)",
                json!({"a": [1,2,3,4,5,6,7,8,9]}),
                json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
            ),
            (
                "States.ArrayContains($.a, $.v)",
                json!({"a": [1,2,3,4,5,6,7,8,9], "v": 5}),
                json!(true),
            ),
            (
                "States.ArrayRange(1, 9, 2)",
                json!({}),
                json!([1, 3, 5, 7, 9]),
            ),
            (
                "States.ArrayGetItem($.a, $.i)",
                json!({"a": [1,2,3,4,5,6,7,8,9], "i": 5}),
                json!(6),
            ),
            (
                "States.ArrayLength($.a)",
                json!({"a": [1,2,3,4,5,6,7,8,9]}),
                json!(9),
            ),
            (
                "States.ArrayUnique($.a)",
                json!({"a": [1,2,3,3,3,3,3,3,4]}),
                json!([1, 2, 3, 4]),
            ),
            (
                "States.Base64Encode($.s)",
                json!({"s": "Data to encode"}),
                json!("RGF0YSB0byBlbmNvZGU="),
            ),
            (
                "States.Base64Decode($.s)",
                json!({"s": "RGF0YSB0byBlbmNvZGU="}),
                json!("Data to encode"),
            ),
            (
                "States.Hash($.Data, $.Algorithm)",
                json!({"Data": "input data", "Algorithm": "SHA-1"}),
                json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
            ),
            (
                "States.JsonMerge($.a, $.b, false)",
                json!({"a": {"a": {"a1": 1, "a2": 2}, "b": 2}, "b": {"a": {"a3": 1, "a4": 2}, "c": 3}}),
                json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
            ),
            (
                "States.MathAdd($.v, $.s)",
                json!({"v": 111, "s": -1}),
                json!(110),
            ),
            (
                "States.StringSplit($.s, $.d)",
                json!({"s": "1,2,3,4,5", "d": ","}),
                json!(["1", "2", "3", "4", "5"]),
            ),
            (
                "States.StringSplit($.s, $.d)",
                json!({"s": "This.is+a,test=string", "d": ".+,="}),
                json!(["This", "is", "a", "test", "string"]),
            ),
        ];
        for (text, input, expected) in cases {
            assert_eq!(eval(text, input), expected, "{text}");
        }
    }

    #[test]
    fn format_escapes_and_value_rendering() {
        assert_eq!(
            eval(
                r"States.Format('\{\} is {} and it\'s {}', $.a, $.b)",
                json!({"a": 1.5, "b": null})
            ),
            json!("{} is 1.5 and it's null")
        );
        assert_eq!(
            eval(
                "States.Format('{} {}', $.o, $.l)",
                json!({"o": {"Arg1": 1, "Arg2": []}, "l": ["x", true]})
            ),
            json!("{Arg1=1, Arg2=[]} [x, true]")
        );
        assert!(fails("States.Format('{} {}', 1)", json!({})).contains("placeholder"));
        assert!(fails("States.Format('{}', 1, 2)", json!({})).contains("placeholder"));
    }

    #[test]
    fn nested_calls_and_the_context_object() {
        assert_eq!(
            eval(
                "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit($.arn, '/'), 1), $$.Execution.Id)",
                json!({"arn": "image/recipe-1/2"})
            ),
            json!("recipe-1.arn:exec")
        );
        assert_eq!(
            eval("States.ArrayLength(States.Array())", json!({})),
            json!(0)
        );
    }

    #[test]
    fn arguments_are_checked_like_aws_checks_them() {
        let input = json!({"a": [1, 2], "s": "x"});
        assert!(fails("States.ArrayGetItem($.a, 5)", input.clone()).contains("out of bounds"));
        assert!(fails("States.ArrayGetItem($.s, 0)", input.clone()).contains("must be an array"));
        assert!(fails("States.ArrayPartition($.a, 0)", input.clone()).contains("positive"));
        assert!(fails("States.ArrayRange(1, 2, 0)", input.clone()).contains("must not be 0"));
        assert!(fails("States.ArrayRange(0, 5000, 1)", input.clone()).contains("at most 1000"));
        assert!(fails("States.ArrayRange(1.5, 3, 1)", input.clone()).contains("integer"));
        assert!(fails("States.MathAdd(2147483648, 1)", input.clone()).contains("32-bit"));
        assert!(fails("States.Hash('x', 'SHA-3')", input.clone()).contains("unknown algorithm"));
        assert!(fails("States.JsonMerge($.a, $.a, false)", input.clone()).contains("JSON object"));
        let objects = json!({"o": {"k": 1}});
        assert!(fails("States.JsonMerge($.o, $.o, true)", objects).contains("shallow"));
        assert!(fails("States.StringToJson('{nope')", input.clone()).contains("not valid JSON"));
        assert!(fails("States.Base64Decode('***')", input.clone()).contains("base64"));
        let long = "x".repeat(MAX_STRING + 1);
        assert!(fails("States.Base64Encode($.s)", json!({"s": long})).contains("at most 10000"));
        assert_eq!(
            eval_with("States.Array($.missing)", input),
            Err(EvalError::PathNotFound("$.missing".into()))
        );
    }

    #[test]
    fn ranges_count_down_and_can_be_empty() {
        assert_eq!(
            eval("States.ArrayRange(5, 1, -2)", json!({})),
            json!([5, 3, 1])
        );
        assert_eq!(eval("States.ArrayRange(5, 1, 2)", json!({})), json!([]));
        assert_eq!(
            eval("States.ArrayRange(0, 999, 1)", json!({}))
                .as_array()
                .map(Vec::len),
            Some(1000)
        );
    }

    #[test]
    fn random_values_come_from_the_seed() {
        let uuid = eval("States.UUID()", json!({}));
        let text = uuid.as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(text).unwrap().get_version_num(), 4);
        assert_eq!(
            eval("States.UUID()", json!({})),
            uuid,
            "same seed, same UUID"
        );
        let seeded = eval("States.MathRandom(1, 1000, 42)", json!({}));
        assert_eq!(eval("States.MathRandom(1, 1000, 42)", json!({})), seeded);
        assert!(fails("States.MathRandom(5, 5)", json!({})).contains("greater"));
    }

    #[test]
    fn malformed_calls_are_refused_at_parse_time() {
        for bad in [
            "States.Nope(1)",
            "States.Array(",
            "States.Array(1 2)",
            "States.Format()",
            "States.UUID(1)",
            "States.MathRandom(1)",
            r"States.Format('\n')",
            "States.Format('unclosed)",
            "States.Array(1) trailing",
            "States.Array($.a[)",
            "States.Array(yes)",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        let deep = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
        assert!(parse(&deep).unwrap_err().contains("nested"));
        let ok = format!("{}1{}", "States.Array(".repeat(10), ")".repeat(10));
        assert!(parse(&ok).is_ok());
    }

    proptest! {
        #[test]
        fn partition_then_flatten_gives_back_the_array(items in proptest::collection::vec(any::<i32>(), 0..50), size in 1i64..10) {
            let out = eval(&format!("States.ArrayPartition($.a, {size})"), json!({"a": items}));
            let chunks = out.as_array().unwrap();
            prop_assert!(chunks.iter().all(|c| c.as_array().unwrap().len() as i64 <= size));
            let flat: Vec<Value> = chunks.iter().flat_map(|c| c.as_array().unwrap().clone()).collect();
            prop_assert_eq!(Value::Array(flat), json!(items));
        }

        #[test]
        fn math_random_stays_in_its_range(start in -1000i64..1000, width in 1i64..1000, seed in any::<u32>()) {
            let v = eval(&format!("States.MathRandom({start}, {}, {seed})", start + width), json!({}));
            let v = v.as_i64().unwrap();
            prop_assert!(v >= start && v < start + width);
        }

        #[test]
        fn base64_round_trips(s in "\\PC{0,200}") {
            let encoded = eval("States.Base64Encode($.s)", json!({"s": s}));
            prop_assert_eq!(eval("States.Base64Decode($.e)", json!({"e": encoded})), json!(s));
        }

        #[test]
        fn string_literals_round_trip_through_escapes(s in "[a-z'{}\\\\ ]{0,30}") {
            let escaped: String = s.chars().flat_map(|c| match c {
                '\'' | '{' | '}' | '\\' => vec!['\\', c],
                c => vec![c],
            }).collect();
            prop_assert_eq!(eval(&format!("States.Array('{escaped}')"), json!({})), json!([s]));
        }

        #[test]
        fn the_parser_never_panics(s in "States\\.[A-Za-z]{0,12}\\(.{0,40}") {
            let _ = parse(&s);
        }

        /// Every function, with arguments at the extremes of what JSON and i64 can say, fails
        /// or succeeds without panicking.
        #[test]
        fn any_call_with_extreme_arguments_evaluates_without_panicking(
            function in prop::sample::select(Function::ALL.to_vec()),
            args in prop::collection::vec(extreme_argument(), 0..4),
        ) {
            let text = format!("{function}({})", args.join(", "));
            if let Ok(call) = parse(&text) {
                let input = json!({"a": [1, "x", [2], {"k": null}], "s": "a,b", "o": {"k": 1}, "n": -3.5});
                let mut rng = Random::new(3);
                let _ = call.eval(&mut Scope { input: &input, context: &json!({}), rng: &mut rng });
            }
        }
    }

    fn extreme_argument() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "2147483647",
            "-2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "1e308",
            "-1e308",
            "0.5",
            "99999999999999999999",
            "'x'",
            "''",
            "'{}'",
            "'[1,2]'",
            "'SHA-256'",
            "true",
            "false",
            "null",
            "$.a",
            "$.s",
            "$.o",
            "$.n",
            "$.missing",
            "$..*",
            "$.a[1::9223372036854775807]",
            "States.Array(1, 2)",
            "States.ArrayRange(-9223372036854775807, 9223372036854775807, 9223372036854775807)",
        ])
        .prop_map(str::to_string)
    }

    #[test]
    fn array_range_with_extreme_steps_stays_exact() {
        let max = i64::MAX;
        assert_eq!(
            eval(
                &format!("States.ArrayRange(-{max}, {max}, {max})"),
                json!({})
            ),
            json!([-max, 0, max])
        );
        assert_eq!(
            eval(
                &format!("States.ArrayRange({max}, -{max}, -{max})"),
                json!({})
            ),
            json!([max, 0, -max])
        );
    }
}
