//! Choice rules: parsing every documented comparison operator (and `And`/`Or`/`Not`) and
//! deciding whether a rule holds for an input.
//!
//! As AWS specifies, comparing values of different types is simply false; a `Variable` (or a
//! `…Path` operand) that matches nothing fails the state with `States.Runtime`, except for
//! `IsPresent`, which is then false.

use super::definition::{Payload, Problem, Reader};
use super::jsonata::Ata;
use super::paths::Path;
use serde_json::{Number, Value};
use std::cmp::Ordering;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A top-level rule of a Choice state: a condition and the state to go to when it holds.
#[derive(Debug, Clone)]
pub(crate) struct ChoiceRule {
    pub(crate) test: Test,
    pub(crate) next: String,
    /// `Assign` of the rule, used instead of the state's when the rule holds.
    pub(crate) assign: Option<Payload>,
    /// JSONata's `Output` of the rule, likewise.
    pub(crate) output: Option<Ata>,
}

/// What decides a rule: a JSONPath condition, or JSONata's `Condition`.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    Path(Condition),
    Ata(Ata),
}

/// A (possibly nested) Boolean condition.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        variable: Path,
        op: Op,
        operand: Operand,
    },
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Literal(Value),
    /// The `…Path` form: the value is read from the input.
    Path(Path),
}

/// A comparison operator, named as in ASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// What kind of operand an operator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    String,
    Pattern,
    Numeric,
    Boolean,
    Timestamp,
    TypeTest,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

impl Op {
    fn family(self) -> Family {
        use Op::*;
        match self {
            StringEquals
            | StringLessThan
            | StringGreaterThan
            | StringLessThanEquals
            | StringGreaterThanEquals => Family::String,
            StringMatches => Family::Pattern,
            NumericEquals
            | NumericLessThan
            | NumericGreaterThan
            | NumericLessThanEquals
            | NumericGreaterThanEquals => Family::Numeric,
            BooleanEquals => Family::Boolean,
            TimestampEquals
            | TimestampLessThan
            | TimestampGreaterThan
            | TimestampLessThanEquals
            | TimestampGreaterThanEquals => Family::Timestamp,
            IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => Family::TypeTest,
        }
    }

    /// Whether an ordering between the two sides satisfies the operator.
    fn accepts(self, ordering: Ordering) -> bool {
        use Op::*;
        match self {
            StringEquals | NumericEquals | TimestampEquals | BooleanEquals => ordering.is_eq(),
            StringLessThan | NumericLessThan | TimestampLessThan => ordering.is_lt(),
            StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => ordering.is_gt(),
            StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => {
                ordering.is_le()
            }
            StringGreaterThanEquals | NumericGreaterThanEquals | TimestampGreaterThanEquals => {
                ordering.is_ge()
            }
            StringMatches | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
                false
            }
        }
    }

    /// The operator named by a rule field, and whether it is the `…Path` form.
    fn from_field(field: &str) -> Option<(Op, bool)> {
        if let Some((_, op)) = OPS.iter().find(|(name, _)| *name == field) {
            return Some((*op, false));
        }
        let base = field.strip_suffix("Path")?;
        let (_, op) = OPS.iter().find(|(name, _)| *name == base)?;
        matches!(
            op.family(),
            Family::String | Family::Numeric | Family::Boolean | Family::Timestamp
        )
        .then_some((*op, true))
    }
}

/// Parses an RFC 3339 timestamp the way ASL requires it: uppercase `T` and `Z`.
pub(crate) fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    // AWS wants ISO 8601's 'T' between date and time (RFC 3339 would allow a space) and
    // upper-case letters.
    if text.contains(['t', 'z']) || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

impl ChoiceRule {
    /// Parses a top-level rule at `location`; records problems and returns `None` if invalid.
    pub(crate) fn parse(
        state: &str,
        value: &Value,
        location: String,
        jsonata: bool,
        problems: &mut Vec<Problem>,
    ) -> Option<ChoiceRule> {
        let test = if jsonata {
            jsonata_condition(state, value, &location, problems)
        } else {
            Condition::parse(state, value, location.clone(), true, problems).map(Test::Path)
        };
        let next = value.get("Next").and_then(Value::as_str);
        if next.is_none() && value.is_object() {
            problems.push(Problem::schema(
                format!("{location}/Next"),
                format!("{state}: every Choices rule needs a Next state"),
            ));
        }
        let (assign, output) = match value {
            Value::Object(obj) => {
                let label = format!("{state} rule {location}");
                let mut r = Reader::new(&label, obj, location.clone(), problems);
                r.jsonata = jsonata;
                (r.assign(), r.ata("Output"))
            }
            _ => (None, None),
        };
        Some(ChoiceRule {
            test: test?,
            next: next?.to_string(),
            assign,
            output,
        })
    }
}

/// A JSONata rule's `Condition`: `true`, `false` or an expression.
fn jsonata_condition(
    state: &str,
    value: &Value,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<Test> {
    let Value::Object(obj) = value else {
        problems.push(Problem::schema(
            location,
            format!("{state}: a choice rule must be an object"),
        ));
        return None;
    };
    let label = format!("{state} rule {location}");
    let mut r = Reader::new(&label, obj, location.to_string(), problems);
    r.jsonata = true;
    r.unknown_fields(&["Condition", "Next", "Assign", "Output"], "a choice rule");
    match obj.get("Condition") {
        Some(Value::Bool(_)) => r.ata("Condition").map(Test::Ata),
        Some(Value::String(s)) if s.starts_with("{%") => r.ata("Condition").map(Test::Ata),
        Some(other) => {
            let message = format!(
                "{state}: Condition must be true, false or a {{% %}} expression, not {other}"
            );
            r.problem("Condition", message);
            None
        }
        None => {
            let message = format!("{state}: a rule of a JSONata Choice state needs a Condition");
            r.problems.push(Problem::schema(location, message));
            None
        }
    }
}

impl Condition {
    fn parse(
        state: &str,
        value: &Value,
        location: String,
        top_level: bool,
        problems: &mut Vec<Problem>,
    ) -> Option<Condition> {
        let Value::Object(obj) = value else {
            problems.push(Problem::schema(
                location,
                format!("{state}: a choice rule must be an object"),
            ));
            return None;
        };
        let label = format!("{state} rule {location}");
        let mut r = Reader::new(&label, obj, location.clone(), problems);
        if !top_level && obj.contains_key("Next") {
            let message = format!("{state}: a rule nested in And, Or or Not cannot have Next");
            r.problem("Next", message);
        }
        let operators: Vec<&String> = obj
            .keys()
            .filter(|k| {
                let rule_field = matches!(k.as_str(), "Variable" | "Next" | "Comment")
                    || (top_level && k.as_str() == "Assign");
                !rule_field
            })
            .collect();
        let [field] = operators.as_slice() else {
            let message = format!(
                "{state}: a choice rule needs exactly one operator (And, Or, Not or a comparison), found {}",
                if operators.is_empty() {
                    "none".to_string()
                } else {
                    operators.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                }
            );
            r.problems.push(Problem::schema(location, message));
            return None;
        };
        let field = field.as_str();
        let operand = &obj[field];
        match field {
            "And" | "Or" | "Not" => {
                if obj.contains_key("Variable") {
                    let message = format!("{state}: a rule using {field} cannot have a Variable");
                    r.problem("Variable", message);
                }
                let here = r.at(field);
                Condition::parse_boolean(state, field, operand, here, problems)
            }
            _ => {
                let Some((op, is_path)) = Op::from_field(field) else {
                    let message = format!("{state}: \"{field}\" is not a choice rule operator");
                    r.problem(field, message);
                    return None;
                };
                let variable = match obj.get("Variable") {
                    Some(_) => r.reference_path("Variable"),
                    None => {
                        let message = format!("{state}: a {field} rule needs a Variable");
                        r.problems.push(Problem::schema(location.clone(), message));
                        None
                    }
                };
                let operand = if is_path {
                    r.reference_path(field).map(Operand::Path)
                } else if literal_fits(op, operand) {
                    Some(Operand::Literal(operand.clone()))
                } else {
                    let message = format!("{state}: {field} needs {}, not {operand}", expected(op));
                    r.problem(field, message);
                    None
                };
                Some(Condition::Compare {
                    variable: variable?,
                    op,
                    operand: operand?,
                })
            }
        }
    }

    fn parse_boolean(
        state: &str,
        field: &str,
        operand: &Value,
        location: String,
        problems: &mut Vec<Problem>,
    ) -> Option<Condition> {
        if field == "Not" {
            return Condition::parse(state, operand, location, false, problems)
                .map(|c| Condition::Not(Box::new(c)));
        }
        let items = match operand.as_array() {
            Some(items) if !items.is_empty() => items,
            _ => {
                let message = format!("{state}: {field} must be a non-empty array of rules");
                problems.push(Problem::schema(location, message));
                return None;
            }
        };
        let parsed: Vec<Option<Condition>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                Condition::parse(state, item, format!("{location}[{i}]"), false, problems)
            })
            .collect();
        let conditions: Option<Vec<Condition>> = parsed.into_iter().collect();
        conditions.map(|c| {
            if field == "And" {
                Condition::And(c)
            } else {
                Condition::Or(c)
            }
        })
    }

    /// True when [`Condition::holds`] reads its `context` argument.
    pub(crate) fn reads_context(&self) -> bool {
        match self {
            Condition::And(all) | Condition::Or(all) => all.iter().any(Condition::reads_context),
            Condition::Not(c) => c.reads_context(),
            Condition::Compare {
                variable, operand, ..
            } => {
                variable.reads_context() || matches!(operand, Operand::Path(p) if p.reads_context())
            }
        }
    }

    /// Whether the condition holds for `input`; `Err` carries a `States.Runtime` cause.
    pub(crate) fn holds(&self, input: &Value, context: &Value) -> Result<bool, String> {
        match self {
            Condition::And(all) => {
                for c in all {
                    if !c.holds(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for c in any {
                    if c.holds(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(c) => Ok(!c.holds(input, context)?),
            Condition::Compare {
                variable,
                op,
                operand,
            } => {
                let value = variable.select(input, context).map_err(|e| e.to_string())?;
                if *op == Op::IsPresent {
                    return Ok(
                        value.is_some() == (operand_literal(operand) == Some(&Value::Bool(true)))
                    );
                }
                let value = value.ok_or_else(|| missing(variable))?;
                let other = match operand {
                    Operand::Literal(v) => v.clone(),
                    Operand::Path(p) => p
                        .select(input, context)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| missing(p))?,
                };
                Ok(compare(*op, &value, &other))
            }
        }
    }
}

fn operand_literal(operand: &Operand) -> Option<&Value> {
    match operand {
        Operand::Literal(v) => Some(v),
        Operand::Path(_) => None,
    }
}

fn missing(path: &Path) -> String {
    format!(
        "Invalid path '{}': The choice state's condition path references an invalid value.",
        path.text()
    )
}

fn expected(op: Op) -> &'static str {
    match op.family() {
        Family::String | Family::Pattern => "a string",
        Family::Numeric => "a number",
        Family::Boolean | Family::TypeTest => "true or false",
        Family::Timestamp => "an RFC 3339 timestamp string",
    }
}

fn literal_fits(op: Op, v: &Value) -> bool {
    match op.family() {
        Family::String | Family::Pattern => v.is_string(),
        Family::Numeric => v.is_number(),
        Family::Boolean | Family::TypeTest => v.is_boolean(),
        Family::Timestamp => v.as_str().and_then(parse_timestamp).is_some(),
    }
}

/// Applies `op` to the variable's `value` and the operand `other`; type mismatches are false.
fn compare(op: Op, value: &Value, other: &Value) -> bool {
    match op.family() {
        Family::TypeTest => {
            let is = match op {
                Op::IsNull => value.is_null(),
                Op::IsNumeric => value.is_number(),
                Op::IsString => value.is_string(),
                Op::IsBoolean => value.is_boolean(),
                Op::IsTimestamp => value.as_str().and_then(parse_timestamp).is_some(),
                _ => true,
            };
            Some(is) == other.as_bool()
        }
        Family::Pattern => match (value.as_str(), other.as_str()) {
            (Some(s), Some(pattern)) => wildcard_match(pattern, s),
            _ => false,
        },
        Family::String => match (value.as_str(), other.as_str()) {
            (Some(a), Some(b)) => op.accepts(a.cmp(b)),
            _ => false,
        },
        Family::Numeric => match (value, other) {
            (Value::Number(a), Value::Number(b)) => {
                numeric_cmp(a, b).is_some_and(|o| op.accepts(o))
            }
            _ => false,
        },
        Family::Boolean => match (value.as_bool(), other.as_bool()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        Family::Timestamp => {
            let a = value.as_str().and_then(parse_timestamp);
            let b = other.as_str().and_then(parse_timestamp);
            match (a, b) {
                (Some(a), Some(b)) => op.accepts(a.cmp(&b)),
                _ => false,
            }
        }
    }
}

/// Compares JSON numbers exactly when both are integers, as floats otherwise.
fn numeric_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// One piece of a `StringMatches` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Char(char),
    Star,
}

/// `StringMatches`: `*` matches any run of characters (including none); `\*` is a literal
/// asterisk and `\\` a literal backslash.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut pieces = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        pieces.push(match c {
            '\\' => Piece::Char(chars.next().unwrap_or('\\')),
            '*' => Piece::Star,
            c => Piece::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy matching with backtracking to the last star: linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pieces.get(p) {
            Some(Piece::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Piece::Star) => {
                last_star = Some((p, t));
                p += 1;
            }
            _ => match last_star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    last_star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pieces[p..].iter().all(|piece| *piece == Piece::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(value: Value) -> ChoiceRule {
        let mut problems = Vec::new();
        let parsed = ChoiceRule::parse(
            "State \"C\"",
            &value,
            "/States/C/Choices[0]".into(),
            false,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        match parsed {
            Some(r) => r,
            None => panic!("rule did not parse: {value}"),
        }
    }

    fn holds(value: Value, input: &Value) -> Result<bool, String> {
        match rule(value).test {
            Test::Path(condition) => condition.holds(input, &json!({})),
            Test::Ata(_) => Err("a JSONPath rule parsed as JSONata".into()),
        }
    }

    #[test]
    fn every_comparison_operator_behaves_as_documented() {
        let input = json!({
            "s": "beta", "n": 10, "f": 2.5, "b": true, "t": "2024-03-01T12:00:00Z",
            "other": "alpha", "ten": 10, "nul": null, "file": "log-2024.txt", "star": "a*b"
        });
        let cases: &[(&str, Value, bool)] = &[
            ("StringEquals", json!("beta"), true),
            ("StringLessThan", json!("gamma"), true),
            ("StringGreaterThan", json!("alpha"), true),
            ("StringLessThanEquals", json!("beta"), true),
            ("StringGreaterThanEquals", json!("zeta"), false),
            ("NumericEquals", json!(10), true),
            ("NumericLessThan", json!(10.5), true),
            ("NumericGreaterThan", json!(9), true),
            ("NumericLessThanEquals", json!(10), true),
            ("NumericGreaterThanEquals", json!(11), false),
            ("BooleanEquals", json!(true), true),
            ("TimestampEquals", json!("2024-03-01T13:00:00+01:00"), true),
            ("TimestampLessThan", json!("2024-03-02T00:00:00Z"), true),
            ("TimestampGreaterThan", json!("2024-03-02T00:00:00Z"), false),
            (
                "TimestampLessThanEquals",
                json!("2024-03-01T12:00:00Z"),
                true,
            ),
            (
                "TimestampGreaterThanEquals",
                json!("2024-01-01T00:00:00Z"),
                true,
            ),
        ];
        for (op, operand, expected) in cases {
            let variable = match op {
                o if o.starts_with("Numeric") => "$.n",
                o if o.starts_with("Boolean") => "$.b",
                o if o.starts_with("Timestamp") => "$.t",
                _ => "$.s",
            };
            let mut r = json!({"Variable": variable, "Next": "X"});
            r[*op] = operand.clone();
            assert_eq!(holds(r, &input), Ok(*expected), "{op} {operand}");
        }
        let paths: &[(&str, &str, &str, bool)] = &[
            ("StringGreaterThanPath", "$.s", "$.other", true),
            ("NumericEqualsPath", "$.n", "$.ten", true),
            ("BooleanEqualsPath", "$.b", "$.b", true),
            ("TimestampEqualsPath", "$.t", "$.t", true),
        ];
        for (op, variable, other, expected) in paths {
            let mut r = json!({"Variable": variable, "Next": "X"});
            r[*op] = json!(other);
            assert_eq!(holds(r, &input), Ok(*expected), "{op}");
        }
        let tests: &[(&str, &str, bool)] = &[
            ("IsNull", "$.nul", true),
            ("IsPresent", "$.missing", false),
            ("IsPresent", "$.nul", true),
            ("IsNumeric", "$.f", true),
            ("IsString", "$.n", false),
            ("IsBoolean", "$.b", true),
            ("IsTimestamp", "$.t", true),
            ("IsTimestamp", "$.s", false),
        ];
        for (op, variable, expected) in tests {
            let mut r = json!({"Variable": variable, "Next": "X"});
            r[*op] = json!(true);
            assert_eq!(holds(r, &input), Ok(*expected), "{op} {variable}");
        }
    }

    #[test]
    fn comparing_different_types_is_false_not_an_error() {
        let input = json!({"n": "10"});
        let r = json!({"Variable": "$.n", "NumericEquals": 10, "Next": "X"});
        assert_eq!(holds(r, &input), Ok(false));
    }

    #[test]
    fn missing_variable_is_a_runtime_error_naming_the_path() {
        let r = json!({"Variable": "$.nope", "StringEquals": "x", "Next": "X"});
        let err = holds(r, &json!({})).err().unwrap_or_default();
        assert!(err.contains("'$.nope'"), "{err}");
    }

    #[test]
    fn string_matches_supports_star_and_escapes() {
        let cases = [
            ("log-*.txt", "log-2024.txt", true),
            ("*.txt", "notes.md", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axxb", false),
            ("*", "", true),
            ("a*b*c", "abxbc", true),
            ("a*b*c", "acb", false),
            ("\\\\*", "\\anything", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                wildcard_match(pattern, text),
                expected,
                "{pattern} vs {text}"
            );
        }
    }

    #[test]
    fn and_or_not_combine_as_in_the_aws_example() {
        // From the AWS Choice documentation: value between 20 and 30, or not equal to "test".
        let and = json!({"And": [
            {"Variable": "$.value", "IsPresent": true},
            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
            {"Variable": "$.value", "NumericLessThan": 30}
        ], "Next": "ValueInTwenties"});
        assert_eq!(holds(and.clone(), &json!({"value": 25})), Ok(true));
        assert_eq!(holds(and, &json!({"value": 30})), Ok(false));
        let not =
            json!({"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"});
        assert_eq!(holds(not.clone(), &json!({"type": "Private"})), Ok(false));
        assert_eq!(holds(not, &json!({"type": "Other"})), Ok(true));
        let or = json!({"Or": [
            {"Variable": "$.a", "BooleanEquals": true},
            {"Variable": "$.b", "BooleanEquals": true}
        ], "Next": "X"});
        assert_eq!(holds(or, &json!({"a": false, "b": true})), Ok(true));
    }

    #[test]
    fn badly_formed_rules_are_each_reported() {
        let cases = [
            json!({"Variable": "$.x", "NumericEquals": "1", "Next": "X"}),
            json!({"Variable": "$.x", "StringEquals": "a", "NumericEquals": 1, "Next": "X"}),
            json!({"Variable": "x", "StringEquals": "a", "Next": "X"}),
            json!({"StringEquals": "a", "Next": "X"}),
            json!({"Variable": "$.x", "StringMatchesPath": "$.y", "Next": "X"}),
            json!({"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "X"}),
            json!({"And": [{"Variable": "$.x", "IsNull": true, "Next": "X"}], "Next": "X"}),
            json!({"Or": [], "Next": "X"}),
            json!({"Variable": "$.x", "IsNull": true}),
        ];
        for case in cases {
            let mut problems = Vec::new();
            ChoiceRule::parse(
                "State \"C\"",
                &case,
                "/States/C/Choices[0]".into(),
                false,
                &mut problems,
            );
            assert!(!problems.is_empty(), "{case} should be refused");
            assert!(
                problems.iter().all(|p| p.message.contains("\"C\"")),
                "{problems:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn pattern_without_wildcards_matches_only_itself(a in "[a-z]{0,8}", b in "[a-z]{0,8}") {
            proptest::prop_assert!(wildcard_match(&a, &a));
            proptest::prop_assert_eq!(wildcard_match(&a, &b), a == b);
        }

        #[test]
        fn star_matches_any_text_and_prefix_star_matches_suffixes(text in "\\PC{0,12}", suffix in "[a-z]{0,4}") {
            proptest::prop_assert!(wildcard_match("*", &text));
            let pattern = format!("*{suffix}");
            let subject = format!("{text}{suffix}");
            proptest::prop_assert!(wildcard_match(&pattern, &subject));
        }
    }

    #[test]
    fn timestamps_need_uppercase_t_and_z() {
        assert!(parse_timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(parse_timestamp("2016-03-14t01:59:00z").is_none());
        assert!(parse_timestamp("2016-03-14").is_none());
    }

    #[test]
    fn large_integers_compare_exactly() {
        let input = json!({"n": 9_007_199_254_740_993_i64});
        let r = json!({"Variable": "$.n", "NumericEquals": 9_007_199_254_740_992_i64, "Next": "X"});
        assert_eq!(holds(r, &input), Ok(false));
    }
}
