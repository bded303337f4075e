//! Behaviours of JSONPath states pinned to executions recorded on AWS: distributed Map runs,
//! the wording of runtime errors, intrinsic functions in Fail states, lenient number reading.

use crate::common::flow::run;
use serde_json::{json, Value};

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

fn map_over(processor_config: Value, extra: Value) -> Value {
    let mut state = json!({"Type": "Map", "ItemsPath": "$.Items",
        "ItemProcessor": {"ProcessorConfig": processor_config, "StartAt": "HandleItem",
                          "States": {"HandleItem": {"Type": "Pass", "End": true}}},
        "End": true});
    for (k, v) in extra.as_object().unwrap() {
        state[k] = v.clone();
    }
    json!({"StartAt": "MapState", "States": {"MapState": state}})
}

#[tokio::test]
async fn a_distributed_map_runs_its_items_as_a_map_run() {
    let config = json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
    let (info, events) = run(
        map_over(
            config,
            json!({"ItemSelector": {"v.$": "$$.Map.Item.Value"}, "Label": "TestMap", "MaxConcurrency": 1}),
        ),
        json!({"Items": [1, 2]}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(json!([{"v": 1}, {"v": 2}])));
    // The iterations' own states are not in the parent's history.
    assert_eq!(
        types(&events),
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    let arn = events[3]["mapRunArn"].as_str().unwrap_or_default();
    assert!(
        arn.starts_with("arn:aws:states:us-east-1:000000000000:mapRun:m/TestMap:"),
        "{arn}"
    );
}

#[tokio::test]
async fn map_quantities_read_from_the_input_are_checked_as_aws_does() {
    let config = json!({"Mode": "INLINE"});
    let cases = [
        (json!({"MaxConcurrencyPath": "$.M"}), json!("NoNumber"),
         "The MaxConcurrencyPath field refers to value \"NoNumber\" which is not a valid integer: $.M"),
        (json!({"MaxConcurrencyPath": "$.M"}), json!({}),
         "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: $.M"),
        (json!({"ToleratedFailureCountPath": "$.M"}), json!(-1),
         "ToleratedFailureCount cannot be negative."),
        (json!({"ToleratedFailurePercentagePath": "$.M"}), json!("NoNumber"),
         "The ToleratedFailurePercentagePath field refers to value \"NoNumber\" which is not a valid float: $.M"),
        (json!({"ToleratedFailurePercentagePath": "$.M"}), json!(100.1),
         "ToleratedFailurePercentage must be between 0 and 100."),
    ];
    for (fields, value, message) in cases {
        let (info, _) = run(
            map_over(config.clone(), fields),
            json!({"Items": [0], "M": value}),
        )
        .await;
        assert_eq!(info.error.as_deref(), Some("States.Runtime"));
        let cause = format!("An error occurred while executing the state 'MapState' (entered at the event id #2). {message}");
        assert_eq!(info.cause, Some(cause));
    }
    // A number written as a string is read as one.
    let (info, _) = run(
        map_over(config, json!({"MaxConcurrencyPath": "$.M"})),
        json!({"Items": [1, 2, 3], "M": "1"}),
    )
    .await;
    assert_eq!(info.output, Some(json!([1, 2, 3])));
}

#[tokio::test]
async fn seconds_path_errors_use_aws_wording() {
    for (value, message) in [
        (json!(-1), "The SecondsPath parameter references a negative value: $.input.waitSeconds == -1"),
        (json!(1.5), "The SecondsPath parameter cannot be parsed as a long value: $.input.waitSeconds == 1.5"),
    ] {
        let (info, _) = run(
            json!({"StartAt": "WaitState", "States": {"WaitState": {"Type": "Wait",
                "SecondsPath": "$.input.waitSeconds", "End": true}}}),
            json!({"input": {"waitSeconds": value}}),
        )
        .await;
        let cause = format!("An error occurred while executing the state 'WaitState' (entered at the event id #2). {message}");
        assert_eq!(info.cause, Some(cause));
    }
}

#[tokio::test]
async fn fail_paths_take_intrinsics_and_report_missing_paths() {
    let (info, _) = run(
        json!({"StartAt": "FailState", "States": {"FailState": {"Type": "Fail",
            "ErrorPath": "States.Format('{}', $.Error)",
            "CausePath": "States.Format('This is a custom error message for {}, caused by {}.', $.Error, $.Cause)"}}}),
        json!({"Error": "error string", "Cause": "cause string"}),
    )
    .await;
    assert_eq!(info.error.as_deref(), Some("error string"));
    assert_eq!(
        info.cause.as_deref(),
        Some("This is a custom error message for error string, caused by cause string.")
    );

    let (info, _) = run(
        json!({"StartAt": "fail", "States": {"fail": {"Type": "Fail", "ErrorPath": "$.ErrorX"}}}),
        json!({"Error": "error-value"}),
    )
    .await;
    assert_eq!(
        info.cause.as_deref(),
        Some("An error occurred while executing the state 'fail' (entered at the event id #2). The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in the input '{\"Error\":\"error-value\"}'")
    );

    // A context path that matches nothing quotes the state's input, not the context object.
    let (info, _) = run(
        json!({"StartAt": "pass", "States": {"pass": {"Type": "Pass",
            "Parameters": {"value.$": "$$.Execution.Input.no_such_jsonpath"}, "End": true}}}),
        json!({"int-literal": 0}),
    )
    .await;
    assert!(
        info.cause
            .as_deref()
            .is_some_and(|c| c.ends_with("could not be found in the input '{\"int-literal\":0}'")),
        "{info:?}"
    );
}

#[tokio::test]
async fn numbers_and_quoted_names_are_read_as_aws_reads_them() {
    let (info, _) = run(
        json!({"StartAt": "S", "States": {"S": {"Type": "Pass", "Parameters": {
            "r.$": "States.MathRandom($.lo, $.hi)", "sum.$": "States.MathAdd($.a, $.b)",
            "value.$": "$['Test\\\"\"Name\"']"}, "End": true}}}),
        json!({"lo": 12.5, "hi": 13.9, "a": 1, "b": 4.3, "Test\\\"\"Name\"": "Value\"\\"}),
    )
    .await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let output = info.output.unwrap_or_default();
    assert_eq!(output["r"], json!(12));
    assert_eq!(output["sum"], json!(5));
    assert_eq!(output["value"], json!("Value\"\\"));
}

#[tokio::test]
async fn a_failing_branch_without_an_error_fails_the_map_without_one() {
    let (info, events) = run(
        json!({"StartAt": "MapState", "States": {"MapState": {"Type": "Map", "MaxConcurrency": 1,
            "ItemProcessor": {"StartAt": "HandleItemFail", "States": {"HandleItemFail": {"Type": "Fail"}}},
            "Catch": [{"ErrorEquals": ["State.ALL"], "Next": "Caught"}], "End": true},
            "Caught": {"Type": "Pass", "End": true}}}),
        json!([1]),
    )
    .await;
    assert_eq!(info.status, "FAILED");
    assert_eq!((info.error, info.cause), (None, None));
    let last = events.last().unwrap();
    assert_eq!(last["type"], json!("ExecutionFailed"));
    assert_eq!(last.get("error"), None);
}
