import { test, expect, Storefront, orderStatus, signIn, openFromInbox } from './fixtures';

test('when two approvers decide the same order, the second is told it was already decided', async ({ page, browser }) => {
  const shop = new Storefront(page);
  await shop.goto();
  const id = await shop.order({ 'Office chair': 2 });
  await expect(orderStatus(page)).toHaveText('Awaiting approval');

  const first = await (await browser.newContext()).newPage();
  const second = await (await browser.newContext()).newPage();
  await signIn(first, 'e2e-approver');
  await signIn(second, 'e2e-approver-2');
  await openFromInbox(first, id);
  await openFromInbox(second, id);

  await first.getByRole('button', { name: 'Approve' }).click();
  await expect(first.getByRole('status')).toHaveText(`Order ${id} approved.`);

  await second.getByLabel('Reason').fill('Too expensive');
  await second.getByRole('button', { name: 'Reject' }).click();
  await expect(second.getByRole('alert')).toHaveText('This order was already decided by e2e-approver.');

  await expect(orderStatus(page)).toHaveText('Processed');
  await first.context().close();
  await second.context().close();
});
