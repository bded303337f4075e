import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import {
  SFNClient,
  CreateActivityCommand,
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  GetActivityTaskCommand,
  GetExecutionHistoryCommand,
  ListStateMachinesCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';

// The AWS SDK for JavaScript against /sfn, with the access key scripts/e2e-server made.
const port = process.env.E2E_PORT ?? '3917';
const endpoint = `http://127.0.0.1:${port}/sfn`;

function client(credentials?: { accessKeyId: string; secretAccessKey: string }) {
  const key = credentials ?? JSON.parse(readFileSync('.sfn-key.json', 'utf8'));
  return new SFNClient({ endpoint, region: 'us-east-1', credentials: key });
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
  await sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{"ok": true}' }));
  const done = await waitDone(sfn, executionArn!);
  expect(done.status).toBe('SUCCEEDED');
  expect(JSON.parse(done.output ?? 'null')).toEqual({ ok: true });
  const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn }));
  expect(history.events?.map((e) => e.type)).toContain('ActivityStarted');
  const started = history.events?.find((e) => e.type === 'ActivityStarted');
  expect(started?.activityStartedEventDetails?.workerName).toBe('js-worker');
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
