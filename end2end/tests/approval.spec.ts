import { test, expect, Storefront, orderStatus, signIn, openFromInbox } from './fixtures';

test('a large order waits, is approved in the inbox, and the customer sees it processed', async ({ page, browser }) => {
  const shop = new Storefront(page);
  await shop.goto();
  const id = await shop.order({ 'Office chair': 1 });
  await expect(orderStatus(page)).toHaveText('Awaiting approval');

  const approverContext = await browser.newContext();
  const approver = await approverContext.newPage();
  await signIn(approver, 'e2e-approver');
  await expect(approver).toHaveURL(/\/inbox$/);
  await expect(approver.getByRole('heading', { name: 'Approval inbox' })).toBeVisible();
  const row = approver.getByRole('row').filter({ has: approver.getByRole('link', { name: id, exact: true }) });
  await expect(row).toContainText('Ada Customer');
  await expect(row).toContainText('$189.00');

  await openFromInbox(approver, id);
  await approver.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(approver.getByRole('status')).toHaveText(`Order ${id} approved.`);
  await approver.getByRole('link', { name: 'Back to inbox' }).click();
  await expect(approver.getByRole('heading', { name: 'Approval inbox' })).toBeVisible();
  await expect(approver.getByRole('link', { name: id, exact: true })).toHaveCount(0);

  // The customer's page notices on its own.
  await expect(orderStatus(page)).toHaveText('Processed');
  await approverContext.close();
});

test('a rejected order shows the reason to the customer', async ({ page, browser }) => {
  const shop = new Storefront(page);
  await shop.goto();
  const id = await shop.order({ 'Standing desk': 1 });
  await expect(orderStatus(page)).toHaveText('Awaiting approval');

  const approverContext = await browser.newContext();
  const approver = await approverContext.newPage();
  await signIn(approver, 'e2e-approver');
  await openFromInbox(approver, id);

  // A reason is required to reject; nothing changes without one.
  await approver.getByRole('button', { name: 'Reject' }).click();
  await expect(approver.getByRole('alert')).toHaveText('Please give a reason for rejecting the order.');
  await expect(orderStatus(page)).toHaveText('Awaiting approval');

  await approver.getByLabel('Reason').fill('Over budget this quarter');
  await approver.getByRole('button', { name: 'Reject' }).click();
  await expect(approver.getByRole('status')).toHaveText(`Order ${id} rejected.`);

  await expect(orderStatus(page)).toHaveText('Rejected');
  await expect(page.getByText('Reason: Over budget this quarter')).toBeVisible();
  await approverContext.close();
});
