//! `QueryLanguage: JSONata` on the durable runtime. The definitions, inputs and expected
//! results follow executions recorded on AWS (outputs, error causes, event details).

use crate::common::flow::{assignments, run};
use serde_json::{json, Value};

/// The events of one type, in order.
fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[tokio::test]
async fn a_jsonata_output_feeds_a_jsonpath_state() {
    let (info, _) = run(
        json!({"StartAt": "JSONataState", "States": {
            "JSONataState": {"QueryLanguage": "JSONata", "Type": "Pass",
                "Output": {"foo": "foobar", "bar": "{% $states.input %}"}, "Next": "JSONPathState"},
            "JSONPathState": {"QueryLanguage": "JSONPath", "Type": "Pass", "End": true}
        }}),
        json!({"input_data": "test"}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        info.output,
        Some(json!({"foo": "foobar", "bar": {"input_data": "test"}}))
    );
}

#[tokio::test]
async fn jsonpath_variables_flow_into_jsonata_arguments_assign_and_output() {
    let (info, events) = run(
        json!({"StartAt": "StateJsonPath", "States": {
            "StateJsonPath": {"Type": "Pass",
                "Result": {"riddle": "What is the answer to life, the universe, and everything?"},
                "Assign": {"answer": 42, "inputData.$": "$"},
                "OutputPath": "$", "ResultPath": "$.enigma.mystery", "Next": "StateJsonata"},
            "StateJsonata": {"QueryLanguage": "JSONata", "Type": "Task", "Resource": "test:task",
                "Arguments": {"FunctionName": "{% $states.input.functionName %}",
                    "Payload": {"theQuestion": "{% $states.input.enigma.mystery.riddle %}",
                                "theAnswer": "{% $answer %}"}},
                "Assign": {"answer": "<omitted>", "message": "{% $states.result %}"},
                "Output": {"result": "{% $states.result.Payload %}"},
                "End": true}
        }}),
        json!({"functionName": "echo"}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let arguments = json!({"FunctionName": "echo", "Payload": {
        "theQuestion": "What is the answer to life, the universe, and everything?",
        "theAnswer": 42}});
    assert_eq!(info.output, Some(json!({ "result": arguments })));
    let assigned = assignments(&events);
    assert_eq!(
        assigned[0],
        json!({"answer": "42",
               "inputData": "{\"riddle\":\"What is the answer to life, the universe, and everything?\"}"})
    );
    assert_eq!(assigned[1]["answer"], json!("\"<omitted>\""));
    let message: Value = serde_json::from_str(assigned[1]["message"].as_str().unwrap()).unwrap();
    assert_eq!(message, json!({ "Payload": arguments }));
}

#[tokio::test]
async fn a_catch_reads_the_error_output_and_the_input() {
    let definition = |catch: Value| {
        json!({"StartAt": "Task", "States": {
            "Task": {"Type": "Task", "QueryLanguage": "JSONata", "Resource": "test:task",
                "Arguments": {"fail": "{% $states.input.fail %}"},
                "Catch": [catch],
                "Output": {"stateInput": "{% $states.input %}", "stateResult": "{% $states.result %}"},
                "Next": "Finish"},
            "Fallback": {"Type": "Pass", "QueryLanguage": "JSONata",
                "Output": {"error": "{% $states.input %}"}, "End": true},
            "Finish": {"Type": "Pass", "QueryLanguage": "JSONata",
                "Output": {"result": "{% $states.input %}"}, "End": true}
        }})
    };
    let error = json!({"Error": "Exception", "Cause": "Some exception was raised."});
    let input = json!({"inputData": "dummy", "fail": true});

    let (info, _) = run(
        definition(json!({"ErrorEquals": ["States.ALL"], "Next": "Fallback",
            "Output": {"stateInput": "{% $states.input %}", "stateError": "{% $states.errorOutput %}"}})),
        input.clone(),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        info.output,
        Some(json!({"error": {"stateInput": input, "stateError": error}}))
    );

    // Without Output the error output is the state's output; Assign samples both.
    let (info, events) = run(
        definition(json!({"ErrorEquals": ["States.ALL"], "Next": "Fallback",
            "Assign": {"errorVar": "{% $states.errorOutput %}", "inputVar": "{% $states.input %}"}})),
        input.clone(),
    )
    .await;
    assert_eq!(info.output, Some(json!({ "error": error })));
    let exited = of_type(&events, "TaskStateExited");
    let assigned = &exited[0]["assignedVariables"];
    let sampled: Value = serde_json::from_str(assigned["errorVar"].as_str().unwrap()).unwrap();
    assert_eq!(sampled, error);

    // Success: Output sees the result.
    let (info, _) = run(
        definition(json!({"ErrorEquals": ["States.ALL"], "Next": "Fallback"})),
        json!({"fail": false}),
    )
    .await;
    assert_eq!(
        info.output,
        Some(json!({"result": {"stateInput": {"fail": false},
                               "stateResult": {"Payload": {"fail": false}}}}))
    );
}

#[tokio::test]
async fn nothing_returned_is_a_query_evaluation_error_naming_the_field() {
    let cases = [
        (json!({"Output": "{% $doesNotExist %}"}), "Output"),
        (
            json!({"Output": {"result": "{% $doesNotExist %}"}}),
            "Output/result",
        ),
        (
            json!({"Assign": {"result": "{% $doesNotExist %}"}}),
            "Assign/result",
        ),
    ];
    for (fields, location) in cases {
        let mut state = json!({"Type": "Pass", "End": true});
        for (k, v) in fields.as_object().unwrap() {
            state[k] = v.clone();
        }
        let (info, events) = run(
            json!({"QueryLanguage": "JSONata", "StartAt": "State0", "States": {"State0": state}}),
            json!({}),
        )
        .await;
        let cause = format!(
            "An error occurred while executing the state 'State0' (entered at the event id #2). The JSONata expression '$doesNotExist' specified for the field '{location}' returned nothing (undefined)."
        );
        assert_eq!(info.status, "FAILED");
        assert_eq!(info.error.as_deref(), Some("States.QueryEvaluationError"));
        assert_eq!(info.cause.as_deref(), Some(cause.as_str()));
        assert_eq!(
            types(&events),
            [
                "ExecutionStarted",
                "PassStateEntered",
                "EvaluationFailed",
                "ExecutionFailed"
            ]
        );
        let failed = of_type(&events, "EvaluationFailed")[0];
        assert_eq!(failed["location"], json!(location));
        assert_eq!(failed["state"], json!("State0"));
        assert_eq!(failed["cause"], json!(cause));
    }
}

#[tokio::test]
async fn a_task_argument_that_throws_is_reported_with_the_jsonata_error() {
    let (info, _) = run(
        json!({"QueryLanguage": "JSONata", "StartAt": "State_0", "States": {
            "State_0": {"Type": "Pass", "Output": {"FunctionResult": "{% $randomSeeded($states.input.fst) %}"},
                        "End": true}}}),
        json!({"fst": 3}),
    )
    .await;
    assert_eq!(
        info.cause.as_deref(),
        Some("An error occurred while executing the state 'State_0' (entered at the event id #2). The JSONata expression '$randomSeeded($states.input.fst)' specified for the field 'Output/FunctionResult' threw an error during evaluation. T1006: Attempted to invoke a non-function")
    );
}

#[tokio::test]
async fn choice_conditions_with_the_rules_assign_and_output() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "ChoiceState", "States": {
        "ChoiceState": {"Type": "Choice",
            "Choices": [{"Condition": "{% $states.input.condition %}", "Next": "ConditionTrue",
                         "Assign": {"Assignment": "Condition assignment"},
                         "Output": "Condition Output block"}],
            "Default": "DefaultState",
            "Assign": {"Assignment": "Default Assignment"},
            "Output": "Default Output block"},
        "ConditionTrue": {"Type": "Pass", "End": true},
        "DefaultState": {"Type": "Fail", "Cause": "Condition is false"}
    }});
    let (info, events) = run(definition.clone(), json!({"condition": true})).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(json!("Condition Output block")));
    assert_eq!(
        assignments(&events),
        [json!({"Assignment": "\"Condition assignment\""})]
    );

    let (info, events) = run(definition.clone(), json!({"condition": false})).await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.cause.as_deref(), Some("Condition is false"));
    assert_eq!(info.error, None);
    assert_eq!(
        assignments(&events),
        [json!({"Assignment": "\"Default Assignment\""})]
    );
    let failed = of_type(&events, "ExecutionFailed")[0];
    assert_eq!(failed.get("error"), None, "AWS leaves out an absent error");

    // A condition must be a boolean.
    let (info, _) = run(definition, json!({"condition": "yes"})).await;
    assert_eq!(info.error.as_deref(), Some("States.QueryEvaluationError"));
    assert!(
        info.cause.as_deref().is_some_and(|c| c.ends_with(
            "specified for the field 'Condition' returned an unexpected result type. Expected 'boolean', but was 'string' for value: \"yes\""
        )),
        "{info:?}"
    );

    let (info, _) = run(
        json!({"StartAt": "ChoiceState", "States": {
            "ChoiceState": {"Type": "Choice", "QueryLanguage": "JSONata",
                "Choices": [{"Condition": true, "Next": "ConditionTrue"}], "Default": "DefaultState"},
            "ConditionTrue": {"Type": "Pass", "End": true},
            "DefaultState": {"Type": "Fail", "Cause": "Condition is false"}}}),
        json!({}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED");
    assert_eq!(info.output, Some(json!({})));
}

#[tokio::test]
async fn map_items_and_item_selector_read_variables_and_the_item() {
    let (info, _) = run(
        json!({"QueryLanguage": "JSONata", "StartAt": "Start", "States": {
            "Start": {"Type": "Pass", "Assign": {"ItemsVar": ["Item1", "Item2"]}, "Next": "MapIterateState"},
            "MapIterateState": {"Type": "Map", "MaxConcurrency": 1, "Items": "{% $ItemsVar %}",
                "ItemSelector": {"map_item_value": "{% $states.context.Map.Item.Value %}",
                                 "var_sample": "{% $ItemsVar %}", "string_literal": "string literal"},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Pass",
                                  "States": {"Pass": {"Type": "Pass", "End": true}}},
                "End": true}
        }}),
        json!({}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let item = |v: &str| json!({"map_item_value": v, "var_sample": ["Item1", "Item2"], "string_literal": "string literal"});
    assert_eq!(info.output, Some(json!([item("Item1"), item("Item2")])));
}

#[tokio::test]
async fn map_items_that_are_not_an_array_fail_the_state() {
    let cases = [
        ("1", "'number' for value: 1"),
        ("'string'", "'string' for value: \"string\""),
        ("{'foo': 'bar'}", "'object' for value: {\"foo\":\"bar\"}"),
        ("null", "'null' for value: null"),
    ];
    for (items, shown) in cases {
        let (info, events) = run(
            json!({"QueryLanguage": "JSONata", "StartAt": "MapIterateState", "States": {
                "MapIterateState": {"Type": "Map", "Items": format!("{{% {items} %}}"),
                    "ItemProcessor": {"StartAt": "Pass", "States": {"Pass": {"Type": "Pass", "End": true}}},
                    "End": true}}}),
            json!({}),
        )
        .await;
        let cause = format!(
            "An error occurred while executing the state 'MapIterateState' (entered at the event id #2). The JSONata expression '{items}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was {shown}"
        );
        assert_eq!(info.cause.as_deref(), Some(cause.as_str()));
        assert_eq!(
            types(&events),
            [
                "ExecutionStarted",
                "MapStateEntered",
                "EvaluationFailed",
                "MapStateFailed",
                "ExecutionFailed"
            ]
        );
    }
}

#[tokio::test]
async fn wait_fail_and_task_fields_take_expressions() {
    let (info, _) = run(
        json!({"QueryLanguage": "JSONata", "StartAt": "WaitState", "States": {
            "WaitState": {"Type": "Wait", "Seconds": "{% $states.input.waitSeconds %}", "End": true}}}),
        json!({"waitSeconds": 0}),
    )
    .await;
    assert_eq!(info.output, Some(json!({"waitSeconds": 0})));

    for bad in [
        "2016-13-05T21:29:29Z",
        "2016-12-05T21:29:29",
        "2016-12-05 21:29:29Z",
    ] {
        let (info, _) = run(
            json!({"QueryLanguage": "JSONata", "StartAt": "WaitState", "States": {
                "WaitState": {"Type": "Wait", "Timestamp": "{% $states.input.TimestampValue %}", "End": true}}}),
            json!({ "TimestampValue": bad }),
        )
        .await;
        assert_eq!(
            info.error.as_deref(),
            Some("States.QueryEvaluationError"),
            "{info:?}"
        );
        assert_eq!(
            info.cause,
            Some(format!("An error occurred while executing the state 'WaitState' (entered at the event id #2). The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {bad}"))
        );
    }

    let (info, _) = run(
        json!({"QueryLanguage": "JSONata", "StartAt": "FailState", "States": {
            "FailState": {"Type": "Fail", "Error": "{% $states.input.error %}",
                          "Cause": "{% 'because ' & $states.input.why %}"}}}),
        json!({"error": "Exception", "why": "it broke"}),
    )
    .await;
    assert_eq!(info.error.as_deref(), Some("Exception"));
    assert_eq!(info.cause.as_deref(), Some("because it broke"));

    let (info, events) = run(
        json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "test:task", "TimeoutSeconds": "{% $states.input.t %}",
                  "Arguments": "{% $states.input %}", "End": true}}}),
        json!({"t": 30}),
    )
    .await;
    assert_eq!(info.output, Some(json!({"Payload": {"t": 30}})));
    let scheduled = of_type(&events, "TaskScheduled")[0];
    assert_eq!(scheduled["timeoutInSeconds"], json!(30));
}

#[tokio::test]
async fn parallel_arguments_and_output_and_the_functions_aws_adds() {
    let (info, _) = run(
        json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Arguments": {"n": "{% $states.input.n %}"},
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass",
                        "Output": "{% $partition($range(1, $states.input.n, 1), 2) %}", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass",
                        "Output": "{% $parse('{\"h\": \"' & $hash('abc', 'MD5') & '\"}') %}", "End": true}}}
                ],
                "Output": {"chunks": "{% $states.result[0] %}", "hash": "{% $states.result[1].h %}",
                           "entered": "{% $states.context.State.Name %}"},
                "End": true}
        }}),
        json!({"n": 5}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        info.output,
        Some(json!({"chunks": [[1, 2], [3, 4], [5]],
                    "hash": "900150983cd24fb0d6963f7d28e17f72", "entered": "P"}))
    );
}

#[test]
fn mixing_the_languages_wrongly_is_refused_at_validation() {
    let cases = [
        // JSONPath fields in a JSONata state, and the reverse.
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "InputPath": "$.x", "End": true}}}),
            "/States/P/InputPath",
        ),
        (
            json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Output": "{% 1 %}", "End": true}}}),
            "/States/P/Output",
        ),
        // Back to JSONPath inside a JSONata machine.
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
            "/States/P/QueryLanguage",
        ),
        // A malformed expression, and an unknown language.
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "Output": {"a": "{% $states.input. %}"}, "End": true}}}),
            "/States/P/Output/a",
        ),
        (
            json!({"QueryLanguage": "XPath", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "End": true}}}),
            "/QueryLanguage",
        ),
        // JSONPath choice operators in a JSONata rule.
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "E"}],
                  "Default": "E"},
            "E": {"Type": "Succeed"}}}),
            "/States/C/Choices[0]/Variable",
        ),
    ];
    for (definition, location) in cases {
        let problems = orderflow::engine::parse(&definition.to_string())
            .err()
            .map(|e| e.problems)
            .unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.location == location),
            "{definition}: {problems:?}"
        );
    }
}
