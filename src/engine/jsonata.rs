//! JSONata for states whose `QueryLanguage` is `JSONata`: field values in which every string
//! written `{% expression %}` is evaluated, with `$states` (input, result, errorOutput,
//! context) and the workflow variables in scope.
//!
//! Evaluation uses the `jsonata-core` crate, plus the functions Step Functions adds
//! (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`). To keep the engine pure,
//! `$now()` and `$millis()` give the time the state was entered and `$random`/`$uuid` draw from
//! the step's seed; `$eval` is refused, as on AWS.

use super::definition::Problem;
use super::intrinsics::{hash, uuid_v4, Random};
use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context as Bindings, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::value::JValue;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::rc::Rc;

/// Deepest nesting an evaluation may reach (recursion included) before it fails.
const MAX_DEPTH: usize = 2_000;
/// Longest sequence an evaluation may build.
const MAX_SEQUENCE: usize = 1_000_000;
/// A last guard against expressions that would run for minutes (say, exponential recursion).
const TIMEOUT_MS: u64 = 5_000;

/// One `{% … %}` expression, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    text: String,
    ast: AstNode,
}

/// A field value: fixed JSON, or JSON with expressions somewhere inside.
#[derive(Debug, Clone)]
pub(crate) enum Ata {
    Fixed(Value),
    Expr(Expr),
    Object(Vec<(String, Ata)>),
    Array(Vec<Ata>),
}

impl std::fmt::Display for Ata {
    /// The expression as written (without `{% %}`), or the JSON value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ata::Fixed(v) => write!(f, "{v}"),
            Ata::Expr(e) => f.write_str(&e.text),
            Ata::Object(_) => f.write_str("{…}"),
            Ata::Array(_) => f.write_str("[…]"),
        }
    }
}

/// Why an evaluation failed: where (`Output/result`) and AWS's wording of what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) location: String,
    pub(crate) message: String,
}

/// The expression inside `{% … %}`, if `text` is written that way.
fn expression_text(text: &str) -> Option<&str> {
    text.strip_prefix("{%")?.strip_suffix("%}").map(str::trim)
}

impl Ata {
    /// Parses a field value; a malformed expression is a problem at its location.
    pub(crate) fn parse(
        value: &Value,
        label: &str,
        location: &str,
        problems: &mut Vec<Problem>,
    ) -> Ata {
        match value {
            Value::String(s) => match expression_text(s) {
                None => Ata::Fixed(value.clone()),
                Some(text) => match jsonata_core::parser::parse(text) {
                    Ok(ast) if !text.is_empty() => Ata::Expr(Expr {
                        text: text.to_string(),
                        ast,
                    }),
                    Ok(_) => {
                        problems.push(Problem::schema(
                            location,
                            format!("{label}: '{s}' holds no JSONata expression"),
                        ));
                        Ata::Fixed(Value::Null)
                    }
                    Err(e) => {
                        problems.push(Problem::schema(
                            location,
                            format!("{label}: the JSONata expression '{text}' is not valid: {e}"),
                        ));
                        Ata::Fixed(Value::Null)
                    }
                },
            },
            Value::Object(fields) => {
                let parts: Vec<(String, Ata)> = fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Ata::parse(v, label, &format!("{location}/{k}"), problems),
                        )
                    })
                    .collect();
                if parts.iter().all(|(_, p)| matches!(p, Ata::Fixed(_))) {
                    Ata::Fixed(value.clone())
                } else {
                    Ata::Object(parts)
                }
            }
            Value::Array(items) => {
                let parts: Vec<Ata> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Ata::parse(v, label, &format!("{location}[{i}]"), problems))
                    .collect();
                if parts.iter().all(|p| matches!(p, Ata::Fixed(_))) {
                    Ata::Fixed(value.clone())
                } else {
                    Ata::Array(parts)
                }
            }
            _ => Ata::Fixed(value.clone()),
        }
    }

    /// The value, when it holds no expression.
    pub(crate) fn fixed(&self) -> Option<&Value> {
        match self {
            Ata::Fixed(v) => Some(v),
            _ => None,
        }
    }

    /// Evaluates the expressions in place; `field` names this value in errors (`Output`).
    pub(crate) fn eval(&self, scope: &Scope, field: &str) -> Result<Value, QueryError> {
        match self {
            Ata::Fixed(v) => Ok(v.clone()),
            Ata::Expr(e) => scope.eval(e, field),
            Ata::Object(parts) => {
                let mut out = Map::new();
                for (key, part) in parts {
                    out.insert(key.clone(), part.eval(scope, &format!("{field}/{key}"))?);
                }
                Ok(Value::Object(out))
            }
            Ata::Array(parts) => parts
                .iter()
                .enumerate()
                .map(|(i, part)| part.eval(scope, &format!("{field}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }
}

/// What expressions can read: `$states` and the workflow variables.
pub(crate) struct Scope {
    states: JValue,
    variables: Vec<(String, JValue)>,
    /// `$millis()`: when the state was entered.
    millis: f64,
    seed: Rc<Cell<u64>>,
}

/// The parts of `$states` a field can see.
pub(crate) struct States<'a> {
    pub(crate) input: &'a Value,
    pub(crate) result: Option<&'a Value>,
    pub(crate) error_output: Option<&'a Value>,
    pub(crate) context: &'a Value,
}

impl Scope {
    /// `variables` are the workflow variables in scope; `entered_millis` the state's entry time
    /// in milliseconds since the epoch; `seed` feeds `$random` and `$uuid`.
    pub(crate) fn new(
        states: States<'_>,
        variables: &Map<String, Value>,
        entered_millis: f64,
        seed: u64,
    ) -> Scope {
        let mut object = Map::new();
        object.insert("input".into(), states.input.clone());
        if let Some(result) = states.result {
            object.insert("result".into(), result.clone());
        }
        if let Some(error_output) = states.error_output {
            object.insert("errorOutput".into(), error_output.clone());
        }
        object.insert("context".into(), states.context.clone());
        Scope {
            states: JValue::from(Value::Object(object)),
            variables: variables
                .iter()
                .map(|(k, v)| (k.clone(), JValue::from(v.clone())))
                .collect(),
            millis: entered_millis,
            seed: Rc::new(Cell::new(seed)),
        }
    }

    /// Where the random generator is now.
    pub(crate) fn seed(&self) -> u64 {
        self.seed.get()
    }

    fn evaluator(&self) -> Evaluator {
        let mut bindings = Bindings::new();
        for (name, value) in &self.variables {
            bindings.bind(name.clone(), value.clone());
        }
        bindings.bind("states".into(), self.states.clone());
        let options = EvaluatorOptions {
            timeout_ms: Some(TIMEOUT_MS),
            max_stack_depth: Some(MAX_DEPTH),
            max_sequence_length: Some(MAX_SEQUENCE),
            ..EvaluatorOptions::default()
        };
        let mut ev = Evaluator::with_options(bindings, options);
        let seed = self.seed.clone();
        let millis = self.millis;
        let added: [(&str, HostFn); 9] = [
            ("partition", Rc::new(partition)),
            ("range", Rc::new(range)),
            ("hash", Rc::new(hash_fn)),
            ("parse", Rc::new(parse_fn)),
            ("random", {
                let seed = seed.clone();
                Rc::new(move |args: &[JValue]| random(args, &seed))
            }),
            (
                "uuid",
                Rc::new(move |_: &[JValue]| {
                    let mut rng = Random::new(seed.get());
                    let id = uuid_v4(&mut rng);
                    seed.set(rng.state());
                    Ok(JValue::from(id))
                }),
            ),
            ("now", Rc::new(move |args: &[JValue]| now(millis, args))),
            (
                "millis",
                Rc::new(move |_: &[JValue]| Ok(JValue::from_f64(millis))),
            ),
            (
                "eval",
                Rc::new(|_: &[JValue]| {
                    Err(failure(
                        "The $eval function is not available in Step Functions; use $parse",
                    ))
                }),
            ),
        ];
        for (name, f) in added {
            let again = f.clone();
            if ev
                .register_fn(name, move |args: &[JValue]| f(args))
                .is_err()
            {
                // A built-in of that name ($now, $millis, $eval, $random): ours replaces it.
                let _ = ev.register_fn_override(name, move |args: &[JValue]| again(args));
            }
        }
        ev
    }

    fn eval(&self, expr: &Expr, field: &str) -> Result<Value, QueryError> {
        let error = |what: String| QueryError {
            location: field.to_string(),
            message: format!(
                "The JSONata expression '{}' specified for the field '{field}' {what}",
                expr.text
            ),
        };
        let value = self
            .evaluator()
            .evaluate(&expr.ast, &JValue::Undefined)
            .map_err(|e| {
                error(format!(
                    "threw an error during evaluation. {}",
                    aws_message(e.message())
                ))
            })?;
        if value.is_undefined() {
            return Err(error("returned nothing (undefined).".into()));
        }
        if value.is_function() || value.is_regex() || value.is_lambda() || value.is_builtin() {
            return Err(error("returned an unsupported result type.".into()));
        }
        value
            .to_json_string()
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| error("returned an unsupported result type.".into()))
    }
}

/// jsonata-js words T1006 without naming the callee; so does AWS.
fn aws_message(message: &str) -> &str {
    if message.starts_with("T1006:") {
        "T1006: Attempted to invoke a non-function"
    } else {
        message
    }
}

type HostResult = Result<JValue, EvaluatorError>;
/// A function an expression can call.
type HostFn = Rc<dyn Fn(&[JValue]) -> HostResult>;

fn failure(message: &str) -> EvaluatorError {
    EvaluatorError::EvaluationError(message.to_string())
}

fn to_json(value: &JValue) -> Option<Value> {
    serde_json::from_str(&value.to_json_string().ok()?).ok()
}

/// A whole number argument.
fn whole(value: Option<&JValue>) -> Option<i64> {
    let n = value?.as_f64()?;
    (n.fract() == 0.0 && n.abs() < 9e15).then_some(n as i64)
}

/// `$partition(array, size)`: the array in chunks of `size`.
fn partition(args: &[JValue]) -> HostResult {
    let items = args
        .first()
        .and_then(to_json)
        .and_then(|v| match v {
            Value::Array(items) => Some(items),
            _ => None,
        })
        .ok_or_else(|| failure("$partition: the first argument must be an array"))?;
    let size = whole(args.get(1))
        .filter(|n| *n > 0)
        .ok_or_else(|| failure("$partition: the chunk size must be a positive whole number"))?;
    let chunks: Vec<Value> = items
        .chunks(size as usize)
        .map(|c| Value::Array(c.to_vec()))
        .collect();
    Ok(JValue::from(Value::Array(chunks)))
}

/// `$range(start, end, step)`: start, start + step, … up to end inclusive. One number alone
/// comes back as that number (a JSONata singleton sequence), as on AWS.
fn range(args: &[JValue]) -> HostResult {
    let (Some(start), Some(end), Some(step)) =
        (whole(args.first()), whole(args.get(1)), whole(args.get(2)))
    else {
        return Err(failure("$range: start, end and step must be whole numbers"));
    };
    if step == 0 {
        return Err(failure("$range: step must not be 0"));
    }
    let count = ((end - start) / step + 1).max(0);
    if count > 1_000 {
        return Err(failure("$range: the range may hold at most 1000 numbers"));
    }
    let numbers: Vec<JValue> = (0..count)
        .map(|i| JValue::from_i64(start + i * step))
        .collect();
    Ok(match numbers.as_slice() {
        [one] => one.clone(),
        _ => JValue::array(numbers),
    })
}

/// `$hash(value, algorithm)`: MD5, SHA-1, SHA-256, SHA-384 or SHA-512, in hex.
fn hash_fn(args: &[JValue]) -> HostResult {
    let data = args
        .first()
        .and_then(JValue::as_str)
        .ok_or_else(|| failure("$hash: the value to hash must be a string"))?;
    let algorithm = args.get(1).and_then(JValue::as_str).unwrap_or("SHA-256");
    hash(algorithm, data.as_bytes())
        .map(JValue::from)
        .ok_or_else(|| {
            failure("$hash: the algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512")
        })
}

/// `$parse(text)`: the JSON value `text` spells.
fn parse_fn(args: &[JValue]) -> HostResult {
    let text = args
        .first()
        .and_then(JValue::as_str)
        .ok_or_else(|| failure("$parse: the argument must be a string"))?;
    serde_json::from_str::<Value>(text)
        .map(JValue::from)
        .map_err(|e| failure(&format!("$parse: the argument is not valid JSON: {e}")))
}

/// `$random([seed])`: a number in [0, 1); the same seed gives the same number.
fn random(args: &[JValue], seed: &Cell<u64>) -> HostResult {
    match args.first() {
        None => {
            let mut rng = Random::new(seed.get());
            let n = rng.unit();
            seed.set(rng.state());
            Ok(JValue::from_f64(n))
        }
        Some(v) => {
            let given = whole(Some(v))
                .ok_or_else(|| failure("$random: the seed must be a whole number"))?;
            Ok(JValue::from_f64(Random::new(given as u64).unit()))
        }
    }
}

/// `$now([picture [, timezone]])`: the state's entry time, formatted as `$fromMillis` does.
fn now(millis: f64, args: &[JValue]) -> HostResult {
    let mut bindings = Bindings::new();
    bindings.bind("m".into(), JValue::from_f64(millis));
    let mut call = String::from("$fromMillis($m");
    for (i, arg) in args.iter().take(2).enumerate() {
        bindings.bind(format!("a{i}"), arg.clone());
        call.push_str(&format!(", $a{i}"));
    }
    call.push(')');
    let ast = jsonata_core::parser::parse(&call).map_err(|e| failure(&e.to_string()))?;
    Evaluator::with_context(bindings).evaluate(&ast, &JValue::Undefined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(input: Value, variables: Value) -> Scope {
        let Value::Object(variables) = variables else {
            panic!("variables must be an object")
        };
        Scope::new(
            States {
                input: &input,
                result: None,
                error_output: None,
                context: &json!({"State": {"Name": "S"}}),
            },
            &variables,
            1_704_067_201_000.0,
            7,
        )
    }

    fn eval(template: Value, input: Value) -> Result<Value, QueryError> {
        let mut problems = Vec::new();
        let ata = Ata::parse(&template, "State \"S\"", "/States/S/Output", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        ata.eval(&scope(input, json!({"limit": 10})), "Output")
    }

    #[test]
    fn only_whole_strings_in_braces_are_expressions() {
        let out = eval(
            json!({"a": "{% $states.input.n * 2 %}", "b": " {% 1 %} ", "c": "$states.input",
                   "d": ["{% $limit %}", 3, {"e": "{%$states.context.State.Name%}"}]}),
            json!({"n": 21}),
        );
        assert_eq!(
            out,
            Ok(json!({"a": 42, "b": " {% 1 %} ", "c": "$states.input", "d": [10, 3, {"e": "S"}]}))
        );
    }

    #[test]
    fn undefined_and_failing_expressions_are_reported_with_their_field() {
        let undefined = eval(json!({"result": "{% $doesNotExist %}"}), json!({}));
        assert_eq!(
            undefined,
            Err(QueryError {
                location: "Output/result".into(),
                message: "The JSONata expression '$doesNotExist' specified for the field 'Output/result' returned nothing (undefined).".into(),
            })
        );
        let thrown = eval(json!("{% $nope(1) %}"), json!({})).unwrap_err();
        assert_eq!(
            thrown.message,
            "The JSONata expression '$nope(1)' specified for the field 'Output' threw an error during evaluation. T1006: Attempted to invoke a non-function"
        );
        let lambda = eval(json!("{% function($x){$x} %}"), json!({})).unwrap_err();
        assert!(
            lambda
                .message
                .ends_with("returned an unsupported result type."),
            "{lambda:?}"
        );
    }

    #[test]
    fn malformed_expressions_are_refused_at_validation() {
        let mut problems = Vec::new();
        Ata::parse(
            &json!({"x": "{% ( %}", "y": "{% %}"}),
            "State \"S\"",
            "/States/S/Output",
            &mut problems,
        );
        let locations: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(locations, ["/States/S/Output/x", "/States/S/Output/y"]);
    }

    #[test]
    fn step_functions_functions() {
        let cases = [
            ("$partition([0,1,2,3], 3)", json!([[0, 1, 2], [3]])),
            ("$range(0, 10, 3)", json!([0, 3, 6, 9])),
            ("$range(1, 9, 9)", json!(1)),
            (
                "$hash('input data', 'SHA-1')",
                json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
            ),
            ("$parse('{\"a\": [1, true]}')", json!({"a": [1, true]})),
            ("$random(42) = $random(42)", json!(true)),
            ("$random() >= 0 and $random() < 1", json!(true)),
            ("$length($uuid())", json!(36)),
            ("$now()", json!("2024-01-01T00:00:01.000Z")),
            ("$millis()", json!(1_704_067_201_000u64)),
            ("$sum([1, 2.5])", json!(3.5)),
            // Expressions recorded on AWS.
            (r#"$contains("hello$world", /^hello\$/)"#, json!(true)),
            (r#"$contains('hello$world', /^hello\ /)"#, json!(false)),
            ("$variable := 1", json!(1)),
            (r#"$number("2")"#, json!(2)),
        ];
        for (expression, expected) in cases {
            let got = eval(json!(format!("{{% {expression} %}}")), json!({}));
            assert_eq!(got, Ok(expected), "{expression}");
        }
        assert!(eval(json!("{% $eval('1') %}"), json!({})).is_err());
        assert!(eval(json!("{% $partition([1], 0) %}"), json!({})).is_err());
    }

    #[test]
    fn runaway_recursion_fails_instead_of_overflowing() {
        let err = eval(
            json!("{% ($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000)) %}"),
            json!({}),
        );
        assert!(err.is_err(), "{err:?}");
    }
}
