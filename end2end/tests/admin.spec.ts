import { test, expect, Storefront, orderStatus, signIn, hydrated } from './fixtures';

test('admins see every order, filter by status, and read an execution history', async ({ page, browser }) => {
  const shop = new Storefront(page);
  await shop.goto();
  const small = await shop.order({ Notebook: 1 });
  await expect(orderStatus(page)).toHaveText('Processed');
  await shop.goto();
  const large = await shop.order({ 'Standing desk': 2 });
  await expect(orderStatus(page)).toHaveText('Awaiting approval');

  const admin = await (await browser.newContext()).newPage();
  await signIn(admin, 'e2e-admin', '/admin/orders');
  await expect(admin.getByRole('heading', { name: 'Orders' })).toBeVisible();
  await expect(admin.getByRole('link', { name: small, exact: true })).toBeVisible();
  await expect(admin.getByRole('link', { name: large, exact: true })).toBeVisible();

  await admin.getByLabel('Status').selectOption('processed');
  await admin.getByRole('button', { name: 'Filter' }).click();
  await expect(admin).toHaveURL(/status=processed/);
  await expect(admin.getByRole('link', { name: small, exact: true })).toBeVisible();
  await expect(admin.getByRole('link', { name: large, exact: true })).toHaveCount(0);
  const statuses = await admin.locator('table tbody tr td:nth-child(4)').allTextContents();
  expect(statuses.length).toBeGreaterThan(0);
  expect(new Set(statuses)).toEqual(new Set(['Processed']));

  await admin.getByRole('link', { name: small, exact: true }).click();
  await expect(admin.getByRole('heading', { name: `Order ${small}` })).toBeVisible();
  await expect(admin.getByRole('heading', { name: 'Execution history' })).toBeVisible();
  const types = admin.locator('table.events tbody tr td:nth-child(2)');
  await expect(types.first()).toHaveText('ExecutionStarted');
  await expect(types.last()).toHaveText('ExecutionSucceeded');
  await expect(types.filter({ hasText: /^ChoiceStateEntered$/ }).first()).toBeVisible();

  await admin.goto(`/admin/orders/${large}`);
  await hydrated(admin);
  await expect(types.filter({ hasText: /^TaskSubmitted$/ })).toHaveCount(1);
  await expect(types.filter({ hasText: /^ExecutionSucceeded$/ })).toHaveCount(0);
  await admin.context().close();
});
