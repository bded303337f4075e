//! Workflow variables (`Assign`, `$name`) in JSONPath states, on the durable runtime. The
//! cases and their expected results follow executions recorded on AWS.

use crate::common::flow::{assignments, run};
use serde_json::{json, Value};

#[tokio::test]
async fn assign_reads_the_result_or_the_parameters_and_later_states_see_it() {
    let (info, events) = run(
        json!({"StartAt": "State0", "States": {
            "State0": {"Type": "Pass", "Parameters": {"input": "PENDING"},
                       "Assign": {"result.$": "$.input"}, "Next": "State1"},
            "State1": {"Type": "Pass", "Assign": {"result": "SUCCESS", "originalResult.$": "$.input"},
                       "Next": "State2"},
            "State2": {"Type": "Pass", "Result": {"answer": 42},
                       "Assign": {"theAnswer.$": "$.answer"}, "Next": "Read"},
            "Read": {"Type": "Pass", "Parameters": {"r.$": "$result", "o.$": "$originalResult",
                     "a.$": "States.Format('{} {}', $theAnswer, $result)"}, "End": true}
        }}),
        json!({}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        assignments(&events),
        [
            json!({"result": "\"PENDING\""}),
            json!({"result": "\"SUCCESS\"", "originalResult": "\"PENDING\""}),
            json!({"theAnswer": "42"}),
        ]
    );
    assert_eq!(
        info.output,
        Some(json!({"r": "SUCCESS", "o": "PENDING", "a": "42 SUCCESS"}))
    );
}

#[tokio::test]
async fn a_state_reads_the_values_from_before_its_own_assign() {
    let (info, events) = run(
        json!({"StartAt": "State0", "States": {
            "State0": {"Type": "Pass", "Result": {"theQuestion": "What is the answer?"},
                       "Assign": {"question.$": "$.theQuestion", "answer": 42}, "Next": "State1"},
            "State1": {"Type": "Pass", "InputPath": "$answer", "ResultPath": "$.theAnswer",
                       "OutputPath": "$answer", "Assign": {"answer": "<omitted>"}, "End": true}
        }}),
        json!({}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(json!(42)));
    assert_eq!(
        assignments(&events).last(),
        Some(&json!({"answer": "\"<omitted>\""}))
    );
}

#[tokio::test]
async fn iterations_read_outer_variables_and_keep_their_own() {
    let (info, events) = run(
        json!({"StartAt": "State0", "States": {
            "State0": {"Type": "Pass", "Assign": {"x": 42, "items": [1, 2, 3]}, "Next": "State1"},
            "State1": {"Type": "Map", "ItemsPath": "$items", "MaxConcurrency": 1,
                "ItemProcessor": {"StartAt": "Inner", "States": {
                    "Inner": {"Type": "Pass", "Assign": {"innerX.$": "$x"}, "End": true}}},
                "Next": "State2"},
            "State2": {"Type": "Pass", "Assign": {"final.$": "$x"}, "Parameters": {"inner.$": "$x"},
                       "End": true}
        }}),
        json!({"input_value": "input_value_literal"}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let assigned = assignments(&events);
    assert_eq!(assigned.len(), 5, "{assigned:?}");
    assert_eq!(assigned[1], json!({"innerX": "42"}));
    assert_eq!(assigned[4], json!({"final": "42"}));
}

#[tokio::test]
async fn a_catch_rule_assigns_from_the_error_output_instead_of_the_state() {
    let (info, events) = run(
        json!({"StartAt": "Task", "States": {
            "Task": {"Type": "Task", "Resource": "test:task", "Parameters": {"fail": true},
                     "Assign": {"result": "SUCCESS"},
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"result.$": "$"},
                                "Next": "Fallback"}],
                     "End": true},
            "Fallback": {"Type": "Pass", "Parameters": {"seen.$": "$result.Error"}, "End": true}
        }}),
        json!({}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(json!({"seen": "Exception"})));
    let assigned = assignments(&events);
    let result: Value =
        serde_json::from_str(assigned[0]["result"].as_str().unwrap_or_default()).unwrap();
    assert_eq!(result["Error"], json!("Exception"));
}

#[tokio::test]
async fn an_unknown_variable_is_a_runtime_error_and_bad_assigns_are_refused() {
    let (info, _) = run(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
            "Parameters": {"x.$": "$nope"}, "End": true}}}),
        json!({}),
    )
    .await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));

    for bad in [
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {"9lives": 1}, "End": true}}}),
        json!({"StartAt": "P", "States": {"P": {"Type": "Succeed", "Assign": {"x": 1}}}}),
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "ResultPath": "$x", "End": true}}}),
    ] {
        let problems = orderflow::engine::parse(&bad.to_string())
            .err()
            .map(|e| e.problems)
            .unwrap_or_default();
        assert!(!problems.is_empty(), "{bad} should be refused");
    }
}

#[tokio::test]
async fn a_choice_rule_assigns_instead_of_the_state_and_a_wait_assigns_when_left() {
    let definition = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice",
              "Choices": [{"Variable": "$.go", "BooleanEquals": true, "Next": "W",
                           "Assign": {"picked": "rule", "seen.$": "$.go"}}],
              "Default": "W", "Assign": {"picked": "default"}},
        "W": {"Type": "Wait", "Seconds": 0, "Assign": {"waited.$": "$picked"}, "Next": "Read"},
        "Read": {"Type": "Pass", "Parameters": {"picked.$": "$picked", "waited.$": "$waited"},
                 "End": true}
    }});
    let (info, events) = run(definition.clone(), json!({"go": true})).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(
        info.output,
        Some(json!({"picked": "rule", "waited": "rule"}))
    );
    assert_eq!(
        assignments(&events),
        [
            json!({"picked": "\"rule\"", "seen": "true"}),
            json!({"waited": "\"rule\""}),
        ]
    );
    let exited: Vec<&str> = events
        .iter()
        .filter(|e| e.get("assignedVariables").is_some())
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(exited, ["ChoiceStateExited", "WaitStateExited"]);

    let (info, _) = run(definition, json!({"go": false})).await;
    assert_eq!(
        info.output,
        Some(json!({"picked": "default", "waited": "default"}))
    );
}

#[tokio::test]
async fn variables_over_aws_size_limits_fail_with_data_limit_exceeded() {
    let big = "x".repeat(200 * 1024);
    for assign in [
        json!({"one.$": "States.Format('{}{}', $.big, $.big)"}),
        json!({"a.$": "$.big", "b.$": "$.big"}),
    ] {
        let (info, _) = run(
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": assign, "End": true}}}),
            json!({ "big": big }),
        )
        .await;
        assert_eq!(info.status, "FAILED", "{assign}");
        assert_eq!(info.error.as_deref(), Some("States.DataLimitExceeded"));
    }
    let (info, _) = run(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {"a.$": "$.big"}, "End": true}}}),
        json!({ "big": big }),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED");
}
