//! JSONPath filter expressions, `[?(@.price < 10 && @.tags)]`, in the subset AWS's JSONPath
//! library accepts: `@` (the candidate) and `$` (the whole input) followed by `.name`,
//! `['name']` or `[n]` steps; numbers, quoted strings, `true`, `false`, `null`; the comparisons
//! `==`, `!=`, `<`, `<=`, `>`, `>=`; `&&`, `||`, `!` and parentheses. A bare operand tests
//! that the node exists (and is not `false` or `null`).
//!
//! Parsing is bounded: at most `MAX_NESTING` levels of `!` and `(`, and at most `MAX_TERMS`
//! comparisons and tests in one filter, so neither the parser nor the evaluation can exhaust
//! the stack.

use serde_json::Value;

/// Deepest nesting of `!` and `(` a filter may have.
pub(crate) const MAX_NESTING: usize = 32;
/// Most comparisons and existence tests one filter may hold.
pub(crate) const MAX_TERMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    Exists(Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operand {
    /// `@…` (relative) or `$…` (from the root), as steps.
    Node {
        relative: bool,
        steps: Vec<Step>,
    },
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Field(String),
    Index(i64),
}

/// Parses the text between `[?(` and `)]`.
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: text,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    let expr = p.or()?;
    p.ws();
    if p.pos != text.len() {
        return Err(format!(
            "unexpected '{}' in the filter expression",
            &text[p.pos..]
        ));
    }
    Ok(expr)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// `!` and `(` open around the current position.
    depth: usize,
    /// Comparisons and tests read so far.
    terms: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            let inner = self.nested(Self::unary)?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.eat("(") {
            let inner = self.nested(Self::or)?;
            if !self.eat(")") {
                return Err("a '(' in the filter is not closed".into());
            }
            return Ok(inner);
        }
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!(
                "a filter may hold at most {MAX_TERMS} comparisons and tests"
            ));
        }
        let left = self.operand()?;
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(token, _)| self.eat(token));
        match op {
            Some((_, op)) => Ok(Expr::Compare(left, op, self.operand()?)),
            None => Ok(Expr::Exists(left)),
        }
    }

    /// Parses with `parse` one level deeper, refusing past `MAX_NESTING`.
    fn nested(&mut self, parse: fn(&mut Self) -> Result<Expr, String>) -> Result<Expr, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "a filter may nest '!' and '(' at most {MAX_NESTING} deep"
            ));
        }
        self.depth += 1;
        let inner = parse(self);
        self.depth -= 1;
        inner
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.ws();
        let rest = self.rest();
        if rest.starts_with('@') || rest.starts_with('$') {
            let relative = rest.starts_with('@');
            self.pos += 1;
            let steps = self.steps()?;
            return Ok(Operand::Node { relative, steps });
        }
        if let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
            let body = &rest[1..];
            let end = body
                .find(quote)
                .ok_or("a string in the filter is not closed")?;
            self.pos += end + 2;
            return Ok(Operand::Literal(Value::String(body[..end].to_string())));
        }
        for (word, value) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(Operand::Literal(value));
            }
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(rest.len());
        match serde_json::from_str::<Value>(&rest[..len]) {
            Ok(n @ Value::Number(_)) if len > 0 => {
                self.pos += len;
                Ok(Operand::Literal(n))
            }
            _ => Err(format!("expected a value or '@' in the filter at '{rest}'")),
        }
    }

    /// `.name`, `['name']` and `[n]` steps after `@` or `$`.
    fn steps(&mut self) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        loop {
            let rest = self.rest();
            if let Some(r) = rest.strip_prefix('.') {
                let len = r
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(r.len());
                if len == 0 {
                    return Err("'.' in a filter must be followed by a field name".into());
                }
                steps.push(Step::Field(r[..len].to_string()));
                self.pos += 1 + len;
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or("a '[' in the filter is not closed")?;
                let inside = r[..end].trim();
                let step = match inside.chars().next() {
                    Some('\'' | '"') if inside.len() >= 2 => {
                        Step::Field(inside[1..inside.len() - 1].to_string())
                    }
                    _ => Step::Index(
                        inside
                            .parse()
                            .map_err(|_| format!("'{inside}' is not an index"))?,
                    ),
                };
                steps.push(step);
                self.pos += end + 2;
            } else {
                return Ok(steps);
            }
        }
    }
}

impl Expr {
    /// Whether `candidate` (the `@`) passes; `root` is the `$`.
    pub(crate) fn matches(&self, candidate: &Value, root: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.matches(candidate, root) || b.matches(candidate, root),
            Expr::And(a, b) => a.matches(candidate, root) && b.matches(candidate, root),
            Expr::Not(e) => !e.matches(candidate, root),
            Expr::Exists(operand) => !matches!(
                operand.value(candidate, root),
                None | Some(Value::Null) | Some(Value::Bool(false))
            ),
            Expr::Compare(a, op, b) => {
                let (Some(a), Some(b)) = (a.value(candidate, root), b.value(candidate, root))
                else {
                    return false;
                };
                compare(a, *op, b)
            }
        }
    }
}

impl Operand {
    fn value<'v>(&'v self, candidate: &'v Value, root: &'v Value) -> Option<&'v Value> {
        match self {
            Operand::Literal(v) => Some(v),
            Operand::Node { relative, steps } => {
                let mut node = if *relative { candidate } else { root };
                for step in steps {
                    node = match step {
                        Step::Field(name) => node.as_object()?.get(name)?,
                        Step::Index(i) => {
                            let items = node.as_array()?;
                            let i = if *i < 0 {
                                items.len().checked_sub(i.unsigned_abs() as usize)?
                            } else {
                                *i as usize
                            };
                            items.get(i)?
                        }
                    };
                }
                Some(node)
            }
        }
    }
}

fn compare(a: &Value, op: Op, b: &Value) -> bool {
    use std::cmp::Ordering;
    let order = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        Op::Eq => order.map_or(a == b, |o| o == Ordering::Equal),
        Op::Ne => order.map_or(a != b, |o| o != Ordering::Equal),
        Op::Lt => order == Some(Ordering::Less),
        Op::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => order == Some(Ordering::Greater),
        Op::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn passes(filter: &str, candidate: Value) -> bool {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&candidate, &json!({"limit": 10}))
    }

    #[test]
    fn comparisons_logic_and_existence() {
        let book = json!({"price": 8.95, "category": "fiction", "isbn": "x", "tags": [1, 2]});
        assert!(passes("@.price < 10", book.clone()));
        assert!(passes("@.price < $.limit", book.clone()));
        assert!(!passes("@.price >= 10", book.clone()));
        assert!(passes("@.category == 'fiction' && @.isbn", book.clone()));
        assert!(passes(
            "@.category == \"poetry\" || @['price'] <= 8.95",
            book.clone()
        ));
        assert!(!passes("@.missing", book.clone()));
        assert!(passes("!(@.missing)", book.clone()));
        assert!(passes("@.tags[-1] == 2 && @.tags[0] != 2", book.clone()));
        assert!(
            !passes("@.price == '8.95'", book),
            "no conversion between types"
        );
    }

    #[test]
    fn nesting_and_length_are_bounded_one_past_the_limit() {
        let nested = |n: usize| format!("{}@.a{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_NESTING)).is_ok());
        let err = parse(&nested(MAX_NESTING + 1)).unwrap_err();
        assert!(err.contains("at most 32 deep"), "{err}");
        let nots = |n: usize| format!("{}@.a", "!".repeat(n));
        assert!(parse(&nots(MAX_NESTING)).is_ok());
        assert!(parse(&nots(MAX_NESTING + 1)).is_err());
        // Far past the limit fails the same way instead of overflowing the stack.
        assert!(parse(&nested(1_000_000)).is_err());
        assert!(parse(&"!(".repeat(500_000)).is_err());

        let terms = |n: usize| vec!["@.a"; n].join(" && ");
        assert!(parse(&terms(MAX_TERMS)).is_ok());
        let err = parse(&terms(MAX_TERMS + 1)).unwrap_err();
        assert!(err.contains("at most 64 comparisons"), "{err}");
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in ["", "@.a <", "(@.a", "@.a == 'x", "@.", "@.a ~ 1", "@[x]"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
