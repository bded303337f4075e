//! Runs a machine to its end on the engine alone, with made-up task results: the engine's
//! side of every action, without a database. Used by the fuzz target and the property tests
//! to check that no definition and no input can make the engine panic or loop forever.

use super::{Action, Context, Failure, Next, StateMachine};
use serde_json::Value;

/// What a drive ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Succeeded(Value),
    Failed(Failure),
    /// The step budget ran out (a loop in the definition).
    OutOfSteps,
}

/// Runs `machine` on `input` for at most `budget` steps in all (branches included). Tasks
/// succeed with their parameters, except every third, which fails with `Fuzz.Error`. As in
/// the runtime, a state output over the payload limit fails with `States.DataLimitExceeded`,
/// so a loop that doubles its data ends instead of filling memory.
pub fn drive(machine: &StateMachine, input: Value, budget: &mut u32) -> Ending {
    let ctx = Context {
        execution_id: "arn:aws:states:us-east-1:000000000000:execution:drive:1".into(),
        task_token: Some("token".into()),
        ..Context::default()
    };
    let mut state = machine.start_at().to_string();
    let mut input = input;
    loop {
        if *budget == 0 {
            return Ending::OutOfSteps;
        }
        *budget -= 1;
        let mut step = machine.enter(&state, &input, &ctx);
        // Follow task and branch results until the state is left.
        loop {
            match step.action {
                Action::Invoke { parameters, .. } => {
                    step = if budget.is_multiple_of(3) {
                        let failure = Failure {
                            error: "Fuzz.Error".into(),
                            cause: "every third task fails".into(),
                        };
                        machine.task_failed(&state, &input, failure, &ctx)
                    } else {
                        machine.task_succeeded(&state, &input, parameters, &ctx)
                    };
                }
                Action::Fork { branches, .. } => {
                    let mut outputs = Vec::new();
                    let mut failed = None;
                    for branch in branches {
                        let scope = [(state.clone(), branch.machine)];
                        let Some(sub) = machine.sub(&scope) else {
                            return Ending::Failed(Failure {
                                error: "Drive.MissingBranch".into(),
                                cause: state,
                            });
                        };
                        match drive(sub, branch.input, budget) {
                            Ending::Succeeded(v) => outputs.push(v),
                            Ending::Failed(f) => {
                                failed = Some(f);
                                break;
                            }
                            Ending::OutOfSteps => return Ending::OutOfSteps,
                        }
                    }
                    step = match failed {
                        Some(f) => machine.fork_failed(&state, &input, f, &ctx),
                        None => machine.fork_succeeded(&state, &input, outputs, &ctx),
                    };
                }
                Action::Transition { output, next } | Action::Wait { output, next, .. } => {
                    if let Some(failure) = Failure::over_payload_limit(&output) {
                        return Ending::Failed(failure);
                    }
                    match next {
                        Next::State(n) => {
                            state = n;
                            input = output;
                        }
                        Next::End => return Ending::Succeeded(output),
                    }
                    break;
                }
                Action::Fail(failure) => return Ending::Failed(failure),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::parse;
    use proptest::prelude::*;
    use serde_json::json;

    const NAMES: [&str; 4] = ["A", "B", "C", "D"];
    const PATHS: [&str; 9] = [
        "$",
        "$.a",
        "$.b[0]",
        "$..a",
        "$.b[*]",
        "$$.Execution.Id",
        "$.missing",
        "bad",
        "$$.Map",
    ];
    const INTRINSICS: [&str; 8] = [
        "States.Format('{} and {}', $.a, $.b)",
        "States.ArrayGetItem($.b, 1)",
        "States.StringToJson($.a)",
        "States.JsonMerge($, $, false)",
        "States.ArrayRange(1, $.a, 1)",
        "States.MathAdd($.a, 1)",
        "States.Hash($.a, 'SHA-256')",
        "States.UUID()",
    ];

    const EXPRESSIONS: [&str; 10] = [
        "$states.input",
        "$states.input.b[0]",
        "$count($states.input.b)",
        "$states.input.a > 1",
        "$x",
        "$states.result",
        "$states.context.Execution.Id",
        "$partition($states.input.b, 2)",
        "$nope()",
        "$string($states.input) & $uuid()",
    ];

    fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
        prop::sample::select(items.to_vec())
    }

    /// A random state, valid or not: `next` is where it goes (None: it ends), `other` a second
    /// target for Choice and Catch.
    fn state(next: Option<&'static str>, other: &'static str) -> impl Strategy<Value = Value> {
        let leaf = json!({"StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}});
        let strategy = (0..14u8, pick(&PATHS), pick(&INTRINSICS), pick(&EXPRESSIONS));
        strategy.prop_map(move |(kind, path, intrinsic, expression)| {
            let to = next.unwrap_or(other);
            let e = format!("{{% {expression} %}}");
            let mut s = match kind {
                0 => json!({"Type": "Pass", "Parameters": {"x.$": path}, "ResultPath": "$.r"}),
                1 => json!({"Type": "Pass", "Parameters": {"f.$": intrinsic}}),
                2 => json!({"Type": "Task", "Resource": "r", "ResultSelector": {"y.$": path},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": other}]}),
                3 => json!({"Type": "Choice", "Choices": [
                    {"Variable": path, "NumericGreaterThan": 1, "Next": to},
                    {"Not": {"Variable": "$.a", "IsPresent": true}, "Next": other}],
                    "Default": to}),
                4 => json!({"Type": "Wait", "SecondsPath": path}),
                5 => json!({"Type": "Succeed", "OutputPath": path}),
                6 => json!({"Type": "Fail", "ErrorPath": path, "Cause": "c"}),
                7 => json!({"Type": "Parallel", "Branches": [leaf, leaf], "ResultPath": path}),
                8 => json!({"Type": "Map", "ItemsPath": path, "ItemProcessor": leaf,
                    "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"}}),
                9 => json!({"Type": "Task", "Resource": "r.waitForTaskToken",
                    "TimeoutSecondsPath": path, "Parameters": {"t.$": "$$.Task.Token"}}),
                10 => json!({"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"o": e},
                    "Assign": {"x": e}}),
                11 => json!({"Type": "Task", "QueryLanguage": "JSONata", "Resource": "r",
                    "Arguments": e, "Output": e, "Catch": [{"ErrorEquals": ["States.ALL"],
                    "Output": "{% $states.errorOutput %}", "Next": other}]}),
                12 => json!({"Type": "Choice", "QueryLanguage": "JSONata",
                    "Choices": [{"Condition": e, "Next": to}], "Default": other}),
                _ => json!({"Type": "Map", "QueryLanguage": "JSONata", "Items": e,
                    "ItemProcessor": leaf}),
            };
            if matches!(kind, 0 | 1 | 2 | 4 | 7 | 8 | 9 | 10 | 11 | 13) {
                match next {
                    Some(n) => s["Next"] = json!(n),
                    None => s["End"] = json!(true),
                }
            }
            s
        })
    }

    /// A chain A → B → … (so every state is reachable) with random extra edges.
    fn machine() -> impl Strategy<Value = Value> {
        (
            1..=NAMES.len(),
            prop::collection::vec(0..NAMES.len(), NAMES.len()),
        )
            .prop_flat_map(|(n, others)| {
                let states: Vec<_> = (0..n)
                    .map(|i| state((i + 1 < n).then(|| NAMES[i + 1]), NAMES[others[i] % n]))
                    .collect();
                states.prop_map(|states| {
                    let states: serde_json::Map<String, Value> = NAMES
                        .iter()
                        .zip(states)
                        .map(|(n, s)| (n.to_string(), s))
                        .collect();
                    json!({"StartAt": "A", "States": states})
                })
            })
    }

    fn input() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-z{}]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                (inner.clone(), prop::collection::vec(inner, 0..3))
                    .prop_map(|(a, b)| json!({"a": a, "b": b})),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn random_machines_are_refused_or_run_to_an_end_within_budget(
            definition in machine(),
            input in input(),
        ) {
            if let Ok(machine) = parse(&definition.to_string()) {
                let mut budget = 200;
                let _ = drive(&machine, input, &mut budget);
            }
        }
    }

    #[test]
    fn a_loop_that_doubles_its_data_fails_at_the_payload_limit() {
        let leaf = json!({"StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}});
        let machine = parse(
            &json!({"StartAt": "A", "States": {
                "A": {"Type": "Parallel", "Branches": [leaf, leaf], "ResultPath": "$.r", "Next": "B"},
                "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "C"}], "Default": "A"},
                "C": {"Type": "Succeed"}
            }})
            .to_string(),
        )
        .expect("valid");
        let mut budget = 400;
        match drive(&machine, json!({"a": "0123456789"}), &mut budget) {
            Ending::Failed(failure) => {
                assert_eq!(failure.error, "States.DataLimitExceeded");
                assert!(failure.cause.contains("262144"), "{}", failure.cause);
            }
            other => panic!("expected the payload limit, got {other:?}"),
        }
        // Each lap (four steps) doubles the data, so the limit comes after about 15 laps.
        assert!(budget > 300, "{budget} steps left");
    }

    #[test]
    fn a_loop_that_wraps_its_data_fails_at_the_depth_limit() {
        let machine = parse(
            &json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Parameters": {"a.$": "$"}, "Next": "B"},
                "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "C"}], "Default": "A"},
                "C": {"Type": "Succeed"}
            }})
            .to_string(),
        )
        .expect("valid");
        let mut budget = 1_000;
        match drive(&machine, json!({}), &mut budget) {
            Ending::Failed(failure) => {
                assert_eq!(failure.error, "States.DataLimitExceeded");
                assert!(
                    failure.cause.contains("101 levels deep"),
                    "{}",
                    failure.cause
                );
            }
            other => panic!("expected the depth limit, got {other:?}"),
        }
    }

    #[test]
    fn a_pass_loop_runs_out_of_steps_instead_of_hanging() {
        let machine = parse(
            &json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Pass", "Next": "A"},
                "C": {"Type": "Succeed"}
            }})
            .to_string(),
        );
        // C is unreachable, so validation refuses this one; a loop never gets to run.
        assert!(machine.is_err());
        if let Ok(machine) = machine {
            let mut budget = 50;
            assert_eq!(drive(&machine, json!({}), &mut budget), Ending::OutOfSteps);
        }
        let machine = parse(
            &json!({"StartAt": "A", "States": {
                "A": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "C"}], "Default": "B"},
                "B": {"Type": "Pass", "Next": "A"},
                "C": {"Type": "Succeed"}
            }})
            .to_string(),
        )
        .expect("valid");
        let mut budget = 50;
        assert_eq!(drive(&machine, json!({}), &mut budget), Ending::OutOfSteps);
        let mut budget = 50;
        assert_eq!(
            drive(&machine, json!({"stop": 1}), &mut budget),
            Ending::Succeeded(json!({"stop": 1}))
        );
    }
}
