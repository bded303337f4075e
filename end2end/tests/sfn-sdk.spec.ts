import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import {
  SFNClient,
  CreateActivityCommand,
  CreateStateMachineCommand,
  DeleteActivityCommand,
  DeleteStateMachineCommand,
  DescribeActivityCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  DescribeStateMachineForExecutionCommand,
  GetActivityTaskCommand,
  GetExecutionHistoryCommand,
  ListActivitiesCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  ListTagsForResourceCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  TagResourceCommand,
  TestStateCommand,
  UntagResourceCommand,
  UpdateStateMachineCommand,
  ValidateStateMachineDefinitionCommand,
} from '@aws-sdk/client-sfn';

// The AWS SDK for JavaScript against /sfn, with the access key scripts/e2e-server made.
const port = process.env.E2E_PORT ?? '3917';
const endpoint = `http://127.0.0.1:${port}/sfn`;

function client(credentials?: { accessKeyId: string; secretAccessKey: string }) {
  const key = credentials ?? JSON.parse(readFileSync('.sfn-key.json', 'utf8'));
  // TestState goes to a "sync-" host on AWS; here everything goes to the one endpoint.
  return new SFNClient({ endpoint, region: 'us-east-1', credentials: key, disableHostPrefix: true });
}

async function waitDone(sfn: SFNClient, executionArn: string) {
  for (let i = 0; i < 100; i++) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING') return d;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${executionArn} is still running`);
}

test('the JavaScript SDK runs an activity-backed workflow', async () => {
  const sfn = client();
  const { activityArn } = await sfn.send(new CreateActivityCommand({ name: 'js-review' }));
  const definition = {
    StartAt: 'Review',
    States: { Review: { Type: 'Task', Resource: activityArn, End: true } },
  };
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: 'js-reviewed',
      definition: JSON.stringify(definition),
      roleArn: 'arn:aws:iam::000000000000:role/tests',
    }),
  );
  expect(stateMachineArn).toBe('arn:aws:states:us-east-1:000000000000:stateMachine:js-reviewed');
  const described = await sfn.send(new DescribeStateMachineCommand({ stateMachineArn }));
  expect(described.creationDate).toBeInstanceOf(Date);
  const names = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines?.map((m) => m.name);
  expect(names).toContain('order-approval');

  const { executionArn } = await sfn.send(
    new StartExecutionCommand({ stateMachineArn, input: JSON.stringify({ order: 'JS-1' }) }),
  );
  const task = await sfn.send(new GetActivityTaskCommand({ activityArn, workerName: 'js-worker' }));
  expect(JSON.parse(task.input ?? 'null')).toEqual({ order: 'JS-1' });
  const activities = (await sfn.send(new ListActivitiesCommand({}))).activities?.map((a) => a.name);
  expect(activities).toContain('js-review');
  const running = await sfn.send(new DescribeStateMachineForExecutionCommand({ executionArn }));
  expect(running.stateMachineArn).toBe(stateMachineArn);
  expect(JSON.parse(running.definition ?? 'null')).toEqual(definition);
  await sfn.send(new SendTaskHeartbeatCommand({ taskToken: task.taskToken }));
  await sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{"ok": true}' }));
  const done = await waitDone(sfn, executionArn!);
  expect(done.status).toBe('SUCCEEDED');
  expect(JSON.parse(done.output ?? 'null')).toEqual({ ok: true });
  const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn }));
  expect(history.events?.map((e) => e.type)).toContain('ActivityStarted');
  const started = history.events?.find((e) => e.type === 'ActivityStarted');
  expect(started?.activityStartedEventDetails?.workerName).toBe('js-worker');
});

test('the JavaScript SDK tags a state machine as infrastructure tools do', async () => {
  const sfn = client();
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: 'js-tagged',
      definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Succeed' } } }),
      roleArn: 'arn:aws:iam::000000000000:role/tests',
      tags: [{ key: 'stack', value: 'orders' }],
    }),
  );
  const resourceArn = stateMachineArn!;
  await sfn.send(new TagResourceCommand({ resourceArn, tags: [{ key: 'owner', value: 'ops@example.com' }] }));
  await sfn.send(new UntagResourceCommand({ resourceArn, tagKeys: ['stack'] }));
  const { tags } = await sfn.send(new ListTagsForResourceCommand({ resourceArn }));
  expect(tags).toEqual([{ key: 'owner', value: 'ops@example.com' }]);
  await expect(
    sfn.send(new TagResourceCommand({ resourceArn, tags: [{ key: 'aws:cloudformation', value: 'x' }] })),
  ).rejects.toMatchObject({ name: 'ValidationException' });
  await sfn.send(new DeleteStateMachineCommand({ stateMachineArn }));
  await expect(sfn.send(new ListTagsForResourceCommand({ resourceArn }))).rejects.toMatchObject({
    name: 'ResourceNotFound',
  });
});

test('the JavaScript SDK sees AWS error names', async () => {
  const sfn = client();
  await expect(
    sfn.send(
      new DescribeStateMachineCommand({
        stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:nope',
      }),
    ),
  ).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' });
  const stranger = client({ accessKeyId: 'AKOFNOSUCHKEY0000000', secretAccessKey: 'x'.repeat(40) });
  await expect(stranger.send(new ListStateMachinesCommand({}))).rejects.toMatchObject({
    name: 'UnrecognizedClientException',
  });
});

test('the JavaScript SDK updates, tests, stops and deletes', async () => {
  const sfn = client();
  const { activityArn } = await sfn.send(new CreateActivityCommand({ name: 'js-hold' }));
  expect((await sfn.send(new DescribeActivityCommand({ activityArn }))).name).toBe('js-hold');
  const hold = { StartAt: 'Hold', States: { Hold: { Type: 'Task', Resource: activityArn, End: true } } };
  const valid = await sfn.send(
    new ValidateStateMachineDefinitionCommand({ definition: JSON.stringify(hold) }),
  );
  expect(valid.result).toBe('OK');
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: 'js-held',
      definition: JSON.stringify(hold),
      roleArn: 'arn:aws:iam::000000000000:role/tests',
    }),
  );
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn }));
  const stopped = await sfn.send(
    new StopExecutionCommand({ executionArn, error: 'Js.Stop', cause: 'enough' }),
  );
  expect(stopped.stopDate).toBeInstanceOf(Date);
  const aborted = await sfn.send(
    new ListExecutionsCommand({ stateMachineArn, statusFilter: 'ABORTED' }),
  );
  expect(aborted.executions?.map((e) => e.executionArn)).toEqual([executionArn]);

  const pass = { StartAt: 'P', States: { P: { Type: 'Pass', Result: 'updated', End: true } } };
  await sfn.send(new UpdateStateMachineCommand({ stateMachineArn, definition: JSON.stringify(pass) }));
  const run = await sfn.send(new StartExecutionCommand({ stateMachineArn }));
  const done = await waitDone(sfn, run.executionArn!);
  expect(JSON.parse(done.output ?? 'null')).toBe('updated');

  const tested = await sfn.send(
    new TestStateCommand({
      definition: JSON.stringify({ Type: 'Pass', Parameters: { 'doubled.$': 'States.MathAdd($.n, $.n)' }, Next: 'X' }),
      roleArn: 'arn:aws:iam::000000000000:role/tests',
      input: '{"n": 21}',
    }),
  );
  expect(tested.status).toBe('SUCCEEDED');
  expect(JSON.parse(tested.output ?? 'null')).toEqual({ doubled: 42 });
  expect(tested.nextState).toBe('X');

  await sfn.send(new DeleteStateMachineCommand({ stateMachineArn }));
  await expect(sfn.send(new StartExecutionCommand({ stateMachineArn }))).rejects.toMatchObject({
    name: 'StateMachineDoesNotExist',
  });
  await sfn.send(new DeleteActivityCommand({ activityArn }));
  await expect(sfn.send(new DescribeActivityCommand({ activityArn }))).rejects.toMatchObject({
    name: 'ActivityDoesNotExist',
  });
});

test('the JavaScript SDK answers .waitForTaskToken callbacks', async () => {
  const sfn = client();
  const definition = {
    StartAt: 'Ask',
    States: {
      Ask: {
        Type: 'Task',
        Resource: 'orderflow:callback.waitForTaskToken',
        Parameters: { 'TaskToken.$': '$$.Task.Token', 'item.$': '$.item' },
        ResultPath: '$.answer',
        Catch: [{ ErrorEquals: ['Js.Refused'], ResultPath: '$.error', Next: 'Refused' }],
        Next: 'Granted',
      },
      Granted: { Type: 'Pass', End: true },
      Refused: { Type: 'Pass', End: true },
    },
  };
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: 'js-callback',
      definition: JSON.stringify(definition),
      roleArn: 'arn:aws:iam::000000000000:role/tests',
    }),
  );
  // The token is in the parameters the history records for the waiting task.
  async function tokenOf(executionArn: string) {
    for (let i = 0; i < 100; i++) {
      const { events } = await sfn.send(new GetExecutionHistoryCommand({ executionArn }));
      if (events?.some((e) => e.type === 'TaskSubmitted')) {
        const scheduled = events.find((e) => e.type === 'TaskScheduled')?.taskScheduledEventDetails;
        return JSON.parse(scheduled?.parameters ?? '{}').TaskToken as string;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${executionArn} never waited for its callback`);
  }

  const granted = await sfn.send(
    new StartExecutionCommand({ stateMachineArn, input: JSON.stringify({ item: 'lamp' }) }),
  );
  await sfn.send(
    new SendTaskSuccessCommand({
      taskToken: await tokenOf(granted.executionArn!),
      output: JSON.stringify({ by: 'js' }),
    }),
  );
  const grantedDone = await waitDone(sfn, granted.executionArn!);
  expect(grantedDone.status).toBe('SUCCEEDED');
  expect(JSON.parse(grantedDone.output ?? 'null')).toEqual({ item: 'lamp', answer: { by: 'js' } });

  const refused = await sfn.send(
    new StartExecutionCommand({ stateMachineArn, input: JSON.stringify({ item: 'sofa' }) }),
  );
  const token = await tokenOf(refused.executionArn!);
  await sfn.send(new SendTaskFailureCommand({ taskToken: token, error: 'Js.Refused', cause: 'no room' }));
  const refusedDone = await waitDone(sfn, refused.executionArn!);
  expect(refusedDone.status).toBe('SUCCEEDED');
  expect(JSON.parse(refusedDone.output ?? 'null')).toEqual({
    item: 'sofa',
    error: { Error: 'Js.Refused', Cause: 'no room' },
  });
  await expect(
    sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })),
  ).rejects.toMatchObject({ name: 'TaskTimedOut' });
});
