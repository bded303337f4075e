"""Drives orderflow's AWS Step Functions API with boto3, as a user of AWS would.

Run by tests/integration/sfn.rs with ENDPOINT (http://host:port/sfn) and an access key in the
environment; exits non-zero with a message on the first thing that does not hold.
"""

import json
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sfn = boto3.client(
    "stepfunctions",
    endpoint_url=os.environ["ENDPOINT"],
    region_name="us-east-1",
    # TestState is sent to a "sync-" host on AWS; here everything goes to the one endpoint.
    config=Config(inject_host_prefix=False, read_timeout=70),
)
ROLE = "arn:aws:iam::000000000000:role/tests"


def expect_error(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{call.__name__}: expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"{call.__name__} should have failed with {code}")


def wait_done(arn):
    for _ in range(100):
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running")


definition = {
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.who)"}, "Next": "Check"},
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.greeting", "StringEquals": "Hello, fail!", "Next": "Boom"}],
            "Default": "Done",
        },
        "Boom": {"Type": "Fail", "Error": "Custom.Error", "Cause": "asked to fail"},
        "Done": {"Type": "Succeed"},
    },
}

# State machines.
created = sfn.create_state_machine(name="greeter", definition=json.dumps(definition), roleArn=ROLE)
arn = created["stateMachineArn"]
assert arn == "arn:aws:states:us-east-1:000000000000:stateMachine:greeter", arn
again = sfn.create_state_machine(name="greeter", definition=json.dumps(definition), roleArn=ROLE)
assert again["stateMachineArn"] == arn and again["creationDate"] == created["creationDate"]
expect_error("StateMachineAlreadyExists", sfn.create_state_machine, name="greeter", definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}), roleArn=ROLE)
e = expect_error("InvalidDefinition", sfn.create_state_machine, name="broken", definition=json.dumps({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}), roleArn=ROLE)
assert "MISSING_TRANSITION_TARGET" in e.response["Error"]["Message"], e.response
expect_error("InvalidName", sfn.create_state_machine, name="bad name!", definition=json.dumps(definition), roleArn=ROLE)
expect_error("StateMachineTypeNotSupported", sfn.create_state_machine, name="fast", definition=json.dumps(definition), roleArn=ROLE, type="EXPRESS")

described = sfn.describe_state_machine(stateMachineArn=arn)
assert described["name"] == "greeter" and described["status"] == "ACTIVE", described
assert json.loads(described["definition"]) == definition
assert described["roleArn"] == ROLE and described["type"] == "STANDARD"
expect_error("StateMachineDoesNotExist", sfn.describe_state_machine, stateMachineArn=arn + "-missing")
expect_error("InvalidArn", sfn.describe_state_machine, stateMachineArn="not-an-arn")

names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
assert "greeter" in names and "order-approval" in names, names
first = sfn.list_state_machines(maxResults=1)
assert len(first["stateMachines"]) == 1 and "nextToken" in first, first
second = sfn.list_state_machines(maxResults=1, nextToken=first["nextToken"])
assert second["stateMachines"][0]["name"] != first["stateMachines"][0]["name"]
paginated = [m["name"] for page in sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 1}) for m in page["stateMachines"]]
assert paginated == sorted(names), paginated

ok = sfn.validate_state_machine_definition(definition=json.dumps(definition))
assert ok["result"] == "OK" and ok["diagnostics"] == [], ok
bad = sfn.validate_state_machine_definition(definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
assert bad["result"] == "FAIL" and bad["diagnostics"][0]["code"] == "MISSING_TRANSITION_TARGET", bad
assert bad["diagnostics"][0]["location"] == "/States/A/Next", bad

# Executions.
run = sfn.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps({"who": "world"}))
assert run["executionArn"] == "arn:aws:states:us-east-1:000000000000:execution:greeter:run-1", run
done = wait_done(run["executionArn"])
assert done["status"] == "SUCCEEDED", done
assert json.loads(done["output"]) == {"greeting": "Hello, world!"}, done
assert json.loads(done["input"]) == {"who": "world"} and done["stopDate"] >= done["startDate"]
expect_error("ExecutionAlreadyExists", sfn.start_execution, stateMachineArn=arn, name="run-1", input=json.dumps({"who": "world"}))
expect_error("InvalidExecutionInput", sfn.start_execution, stateMachineArn=arn, input="{not json")
expect_error("StateMachineDoesNotExist", sfn.start_execution, stateMachineArn=arn + "-missing")

failed = wait_done(sfn.start_execution(stateMachineArn=arn, input=json.dumps({"who": "fail"}))["executionArn"])
assert failed["status"] == "FAILED" and failed["error"] == "Custom.Error" and failed["cause"] == "asked to fail", failed
expect_error("ExecutionDoesNotExist", sfn.describe_execution, executionArn=run["executionArn"] + "-missing")

listed = sfn.list_executions(stateMachineArn=arn)["executions"]
assert len(listed) == 2 and {x["status"] for x in listed} == {"SUCCEEDED", "FAILED"}, listed
only_failed = sfn.list_executions(stateMachineArn=arn, statusFilter="FAILED")["executions"]
assert [x["status"] for x in only_failed] == ["FAILED"], only_failed
pages = list(sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, PaginationConfig={"PageSize": 1}))
assert sum(len(p["executions"]) for p in pages) == 2 and len(pages) == 2, pages
expect_error("ValidationException", sfn.list_executions, stateMachineArn=arn, statusFilter="DONE")

history = sfn.get_execution_history(executionArn=run["executionArn"])["events"]
types = [e["type"] for e in history]
assert types == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ChoiceStateEntered", "ChoiceStateExited", "SucceedStateEntered", "SucceedStateExited", "ExecutionSucceeded"], types
assert [e["id"] for e in history] == list(range(1, 9))
assert history[1]["stateEnteredEventDetails"]["name"] == "Greet", history[1]
assert history[0]["executionStartedEventDetails"]["roleArn"] == ROLE, history[0]
assert json.loads(history[2]["stateExitedEventDetails"]["output"]) == {"greeting": "Hello, world!"}
backwards = sfn.get_execution_history(executionArn=run["executionArn"], reverseOrder=True, maxResults=3)
assert [e["id"] for e in backwards["events"]] == [8, 7, 6] and "nextToken" in backwards, backwards
rest = sfn.get_execution_history(executionArn=run["executionArn"], reverseOrder=True, nextToken=backwards["nextToken"])
assert [e["id"] for e in rest["events"]] == [5, 4, 3, 2, 1], rest
lean = sfn.get_execution_history(executionArn=run["executionArn"], includeExecutionData=False)["events"]
assert "input" not in lean[1]["stateEnteredEventDetails"], lean[1]

# Callbacks with tokens that do not exist.
expect_error("TaskDoesNotExist", sfn.send_task_success, taskToken="0" * 64, output="{}")
expect_error("InvalidOutput", sfn.send_task_success, taskToken="0" * 64, output="{not json")
expect_error("TaskDoesNotExist", sfn.send_task_failure, taskToken="0" * 64, error="E")
expect_error("TaskDoesNotExist", sfn.send_task_heartbeat, taskToken="0" * 64)

# Activities: a worker takes tasks with GetActivityTask and answers with the token.
activity = sfn.create_activity(name="review")
activity_arn = activity["activityArn"]
assert activity_arn == "arn:aws:states:us-east-1:000000000000:activity:review", activity
assert sfn.create_activity(name="review")["activityArn"] == activity_arn
assert sfn.describe_activity(activityArn=activity_arn)["name"] == "review"
assert [a["name"] for a in sfn.list_activities()["activities"]] == ["review"]
expect_error("ActivityDoesNotExist", sfn.describe_activity, activityArn=activity_arn + "-missing")

worked = {
    "StartAt": "Review",
    "States": {
        "Review": {
            "Type": "Task",
            "Resource": activity_arn,
            "Parameters": {"order.$": "$.order"},
            "TimeoutSeconds": 30,
            "HeartbeatSeconds": 2,
            "Catch": [{"ErrorEquals": ["Review.Rejected"], "ResultPath": "$.error", "Next": "Rejected"}],
            "End": True,
        },
        "Rejected": {"Type": "Pass", "End": True},
    },
}
reviewed = sfn.create_state_machine(name="reviewed", definition=json.dumps(worked), roleArn=ROLE)["stateMachineArn"]


def take_task():
    task = sfn.get_activity_task(activityArn=activity_arn, workerName="worker-1")
    assert task.get("taskToken"), task
    return task


# Succeeded by the worker.
approved = sfn.start_execution(stateMachineArn=reviewed, input=json.dumps({"order": "ORD-1"}))["executionArn"]
task = take_task()
assert json.loads(task["input"]) == {"order": "ORD-1"}, task
sfn.send_task_heartbeat(taskToken=task["taskToken"])
sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"approved": True}))
done = wait_done(approved)
assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"approved": True}, done
kinds = [e["type"] for e in sfn.get_execution_history(executionArn=approved)["events"]]
assert kinds[1:5] == ["TaskStateEntered", "ActivityScheduled", "ActivityStarted", "ActivitySucceeded"], kinds
expect_error("TaskTimedOut", sfn.send_task_success, taskToken=task["taskToken"], output="{}")

# Failed by the worker and caught.
rejected = sfn.start_execution(stateMachineArn=reviewed, input=json.dumps({"order": "ORD-2"}))["executionArn"]
task = take_task()
sfn.send_task_failure(taskToken=task["taskToken"], error="Review.Rejected", cause="too expensive")
done = wait_done(rejected)
assert done["status"] == "SUCCEEDED", done
assert json.loads(done["output"])["error"] == {"Error": "Review.Rejected", "Cause": "too expensive"}, done

# No heartbeat within HeartbeatSeconds: States.HeartbeatTimeout, and the token stops working.
silent = sfn.start_execution(stateMachineArn=reviewed, input=json.dumps({"order": "ORD-3"}))["executionArn"]
task = take_task()
deadline = time.time() + 15
while sfn.describe_execution(executionArn=silent)["status"] == "RUNNING" and time.time() < deadline:
    time.sleep(0.2)
timed_out = sfn.describe_execution(executionArn=silent)
assert timed_out["status"] == "FAILED" and timed_out["error"] == "States.HeartbeatTimeout", timed_out
expect_error("TaskTimedOut", sfn.send_task_success, taskToken=task["taskToken"], output="{}")

# .waitForTaskToken: the state's Parameters hand the token on; the history records them, so a
# client finds it in the TaskScheduled event and answers with SendTaskSuccess or SendTaskFailure.
callback = {
    "StartAt": "Wait for callback",
    "States": {
        "Wait for callback": {
            "Type": "Task",
            "Resource": "orderflow:callback.waitForTaskToken",
            "Parameters": {"TaskToken.$": "$$.Task.Token", "order.$": "$.order"},
            "ResultPath": "$.answer",
            "TimeoutSeconds": 60,
            "Catch": [{"ErrorEquals": ["Callback.Rejected"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "Accepted",
        },
        "Accepted": {"Type": "Pass", "End": True},
        "Rejected": {"Type": "Pass", "End": True},
    },
}
called_back = sfn.create_state_machine(name="called-back", definition=json.dumps(callback), roleArn=ROLE)["stateMachineArn"]


def waiting_token(arn):
    """The token of the callback `arn` waits for, once it waits."""
    for _ in range(100):
        events = sfn.get_execution_history(executionArn=arn)["events"]
        if any(e["type"] == "TaskSubmitted" for e in events):
            scheduled = next(e for e in events if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]
            assert (scheduled["resourceType"], scheduled["resource"]) == ("orderflow", "callback.waitForTaskToken"), scheduled
            parameters = json.loads(scheduled["parameters"])
            return parameters["TaskToken"], parameters
        time.sleep(0.05)
    raise AssertionError(f"{arn} never waited for its callback")


def states_entered(arn):
    events = sfn.get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


resumed = sfn.start_execution(stateMachineArn=called_back, input=json.dumps({"order": "CB-1"}))["executionArn"]
token, parameters = waiting_token(resumed)
assert parameters["order"] == "CB-1", parameters
assert sfn.describe_execution(executionArn=resumed)["status"] == "RUNNING"
sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
done = wait_done(resumed)
assert done["status"] == "SUCCEEDED", done
assert json.loads(done["output"]) == {"order": "CB-1", "answer": {"approved": True}}, done
assert states_entered(resumed) == ["Wait for callback", "Accepted"]
kinds = [e["type"] for e in sfn.get_execution_history(executionArn=resumed)["events"]]
assert kinds[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"], kinds
expect_error("TaskTimedOut", sfn.send_task_failure, taskToken=token, error="Late")

refused = sfn.start_execution(stateMachineArn=called_back, input=json.dumps({"order": "CB-2"}))["executionArn"]
token, _ = waiting_token(refused)
sfn.send_task_failure(taskToken=token, error="Callback.Rejected", cause="out of stock")
done = wait_done(refused)
assert done["status"] == "SUCCEEDED", done
assert json.loads(done["output"]) == {"order": "CB-2", "error": {"Error": "Callback.Rejected", "Cause": "out of stock"}}, done
assert states_entered(refused) == ["Wait for callback", "Rejected"]
failed = next(e for e in sfn.get_execution_history(executionArn=refused)["events"] if e["type"] == "TaskFailed")
assert failed["taskFailedEventDetails"]["error"] == "Callback.Rejected", failed
expect_error("TaskTimedOut", sfn.send_task_success, taskToken=token, output="{}")

# Stopped by a person.
stopped = sfn.start_execution(stateMachineArn=reviewed, input=json.dumps({"order": "ORD-4"}))["executionArn"]
stop = sfn.stop_execution(executionArn=stopped, error="Ops.Cancelled", cause="customer called")
assert stop["stopDate"] is not None
aborted = sfn.describe_execution(executionArn=stopped)
assert aborted["status"] == "ABORTED" and aborted["error"] == "Ops.Cancelled" and aborted["cause"] == "customer called", aborted
last = sfn.get_execution_history(executionArn=stopped, reverseOrder=True, maxResults=1)["events"][0]
assert last["type"] == "ExecutionAborted" and last["executionAbortedEventDetails"]["error"] == "Ops.Cancelled", last
assert [x["executionArn"] for x in sfn.list_executions(stateMachineArn=reviewed, statusFilter="ABORTED")["executions"]] == [stopped]
expect_error("ExecutionDoesNotExist", sfn.stop_execution, executionArn=stopped + "-missing")

for_execution = sfn.describe_state_machine_for_execution(executionArn=stopped)
assert for_execution["stateMachineArn"] == reviewed and json.loads(for_execution["definition"]) == worked, for_execution

# Updating a definition leaves running executions on the one they started with.
running = sfn.start_execution(stateMachineArn=reviewed, input=json.dumps({"order": "ORD-5"}))["executionArn"]
shorter = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": "new", "End": True}}}
updated = sfn.update_state_machine(stateMachineArn=reviewed, definition=json.dumps(shorter))
assert updated["updateDate"] is not None
assert json.loads(sfn.describe_state_machine(stateMachineArn=reviewed)["definition"]) == shorter
assert sfn.describe_state_machine(stateMachineArn=reviewed)["roleArn"] == ROLE
assert json.loads(sfn.describe_state_machine_for_execution(executionArn=running)["definition"]) == worked
task = take_task()
sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps("old"))
assert json.loads(wait_done(running)["output"]) == "old"
new_run = wait_done(sfn.start_execution(stateMachineArn=reviewed)["executionArn"])
assert json.loads(new_run["output"]) == "new", new_run
expect_error("InvalidDefinition", sfn.update_state_machine, stateMachineArn=reviewed, definition="{}")
expect_error("StateMachineDoesNotExist", sfn.update_state_machine, stateMachineArn=reviewed + "-missing", definition=json.dumps(shorter))

# Deleting: gone from the list, no new executions; the old ones stay readable.
sfn.delete_state_machine(stateMachineArn=reviewed)
assert "reviewed" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
expect_error("StateMachineDoesNotExist", sfn.describe_state_machine, stateMachineArn=reviewed)
expect_error("StateMachineDoesNotExist", sfn.start_execution, stateMachineArn=reviewed)
assert sfn.describe_execution(executionArn=approved)["status"] == "SUCCEEDED"
sfn.delete_state_machine(stateMachineArn=reviewed)
expect_error("ValidationException", sfn.delete_state_machine, stateMachineArn="arn:aws:states:us-east-1:000000000000:stateMachine:order-approval")
recreated = sfn.create_state_machine(name="reviewed", definition=json.dumps(shorter), roleArn=ROLE)
assert recreated["stateMachineArn"] == reviewed

sfn.delete_activity(activityArn=activity_arn)
expect_error("ActivityDoesNotExist", sfn.describe_activity, activityArn=activity_arn)

# Tags: given at creation, added, replaced, listed and removed; they go with their resource.
def tags_of(resource):
    return {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=resource)["tags"]}


tagged = sfn.create_state_machine(name="tagged", definition=json.dumps(definition), roleArn=ROLE, tags=[{"key": "team", "value": "billing"}, {"key": "env", "value": ""}])["stateMachineArn"]
assert sfn.list_tags_for_resource(resourceArn=tagged)["tags"] == [{"key": "env", "value": ""}, {"key": "team", "value": "billing"}]
# The same definition again is the same request, as on AWS: other tags and roles are not applied.
sfn.create_state_machine(name="tagged", definition=json.dumps(definition), roleArn=ROLE + "-other", tags=[{"key": "extra", "value": "x"}])
assert tags_of(tagged) == {"env": "", "team": "billing"}
assert sfn.describe_state_machine(stateMachineArn=tagged)["roleArn"] == ROLE
sfn.tag_resource(resourceArn=tagged, tags=[{"key": "team", "value": "payments"}, {"key": "cost centre", "value": "42/EU @ café"}])
assert tags_of(tagged) == {"env": "", "team": "payments", "cost centre": "42/EU @ café"}
sfn.untag_resource(resourceArn=tagged, tagKeys=["env", "never-set"])
assert tags_of(tagged) == {"team": "payments", "cost centre": "42/EU @ café"}
e = expect_error("TooManyTags", sfn.tag_resource, resourceArn=tagged, tags=[{"key": f"k{i}", "value": "v"} for i in range(49)])
assert e.response.get("resourceName") == tagged, e.response
sfn.tag_resource(resourceArn=tagged, tags=[{"key": f"k{i}", "value": "v"} for i in range(48)])
assert len(tags_of(tagged)) == 50
sfn.untag_resource(resourceArn=tagged, tagKeys=[f"k{i}" for i in range(48)])
for bad in [{"key": "aws:owner", "value": "v"}, {"key": "k" * 129, "value": "v"}, {"key": "k", "value": "v" * 257}, {"key": "a<b", "value": "v"}, {"key": "k", "value": "semi;colon"}]:
    expect_error("ValidationException", sfn.tag_resource, resourceArn=tagged, tags=[{"key": "fine", "value": "v"}, bad])
expect_error("TooManyTags", sfn.create_state_machine, name="over-tagged", definition=json.dumps(definition), roleArn=ROLE, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
expect_error("ValidationException", sfn.create_state_machine, name="badly-tagged", definition=json.dumps(definition), roleArn=ROLE, tags=[{"key": "aws:x", "value": "v"}])
assert not {"over-tagged", "badly-tagged"} & {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
assert tags_of(tagged) == {"team": "payments", "cost centre": "42/EU @ café"}
e = expect_error("ResourceNotFound", sfn.list_tags_for_resource, resourceArn=tagged + "-missing")
assert e.response.get("resourceName") == tagged + "-missing", e.response
expect_error("ResourceNotFound", sfn.tag_resource, resourceArn=tagged + "-missing", tags=[{"key": "k", "value": "v"}])
expect_error("InvalidArn", sfn.list_tags_for_resource, resourceArn="arn:aws:s3:::a-bucket")
sfn.delete_state_machine(stateMachineArn=tagged)
expect_error("ResourceNotFound", sfn.list_tags_for_resource, resourceArn=tagged)
sfn.create_state_machine(name="tagged", definition=json.dumps(definition), roleArn=ROLE)
assert tags_of(tagged) == {}
worker = sfn.create_activity(name="tagged-worker", tags=[{"key": "queue", "value": "night"}])["activityArn"]
assert tags_of(worker) == {"queue": "night"}
sfn.untag_resource(resourceArn=worker, tagKeys=["queue"])
assert tags_of(worker) == {}
sfn.delete_activity(activityArn=worker)
expect_error("ResourceNotFound", sfn.tag_resource, resourceArn=worker, tags=[{"key": "k", "value": "v"}])

# TestState: one state, on a given input, stored nowhere.
t = sfn.test_state(definition=json.dumps({"Type": "Pass", "Parameters": {"x.$": "$.a"}, "Next": "After"}), roleArn=ROLE, input='{"a": 1}')
assert t["status"] == "SUCCEEDED" and json.loads(t["output"]) == {"x": 1} and t["nextState"] == "After", t
t = sfn.test_state(definition=json.dumps({"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericGreaterThan": 0, "Next": "Big"}], "Default": "Small"}), roleArn=ROLE, input='{"a": 1}')
assert t["nextState"] == "Big", t
t = sfn.test_state(definition=json.dumps({"Type": "Fail", "Error": "E", "Cause": "c"}), roleArn=ROLE)
assert (t["status"], t["error"], t["cause"]) == ("FAILED", "E", "c"), t
t = sfn.test_state(definition=json.dumps({"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $x + 1 %}", "End": True}), roleArn=ROLE, variables='{"x": 41}')
assert json.loads(t["output"]) == 42 and "nextState" not in t, t
task = {"Type": "Task", "Resource": "orderflow:no-such-handler", "End": True}
t = sfn.test_state(definition=json.dumps({**task, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]}), roleArn=ROLE, inspectionLevel="DEBUG")
assert t["status"] == "CAUGHT_ERROR" and t["error"] == "States.TaskFailed" and t["nextState"] == "Handle", t
assert json.loads(t["inspectionData"]["input"]) == {}, t
t = sfn.test_state(definition=json.dumps({**task, "Retry": [{"ErrorEquals": ["States.ALL"]}]}), roleArn=ROLE)
assert t["status"] == "RETRIABLE", t
expect_error("InvalidDefinition", sfn.test_state, definition=json.dumps({"Type": "Pass", "Next": 3}), roleArn=ROLE)
assert sfn.list_executions(stateMachineArn=arn)["executions"].__len__() == 2

print("boto3: all checks passed")
