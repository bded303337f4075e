import { type Page } from '@playwright/test';
import { test, expect, Storefront, orderStatus, signIn, hydrated, openFromInbox } from './fixtures';

/** The inbox row of order `id`. */
function row(page: Page, id: string) {
  return page.getByRole('row').filter({ has: page.getByRole('link', { name: id, exact: true }) });
}

/** Places an order in a fresh page of its own; returns its id and the customer's page. */
async function placeOrder(browser: import('@playwright/test').Browser, quantities: Record<string, number>, email?: string) {
  const page = await (await browser.newContext()).newPage();
  const shop = new Storefront(page);
  await shop.goto();
  const id = await shop.order(quantities, 'Ada Customer', email);
  await expect(orderStatus(page)).toHaveText('Awaiting approval');
  return { id, customer: page };
}

async function approverPage(browser: import('@playwright/test').Browser, username: string, path = '/inbox') {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, username, path);
  await hydrated(page);
  return page;
}

test('new orders, claims and decisions show up live; a claimed order is taken over explicitly', async ({ browser }) => {
  const ana = await approverPage(browser, 'e2e-approver');
  const bo = await approverPage(browser, 'e2e-approver-2');
  // Both inboxes are open before the order exists: it arrives without a reload.
  const { id, customer } = await placeOrder(browser, { 'Office chair': 3 });
  await expect(row(ana, id)).toBeVisible();
  await expect(row(bo, id)).toBeVisible();

  await row(ana, id).getByRole('button', { name: 'Claim' }).click();
  await expect(ana.getByRole('status')).toHaveText(`You are working on order ${id}.`);
  await expect(row(ana, id).getByRole('cell').nth(7)).toHaveText('you');
  await expect(row(bo, id).getByRole('cell').nth(7)).toHaveText('e2e-approver');

  // Bo cannot decide it without taking it over.
  await row(bo, id).getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(bo.getByRole('alert')).toHaveText('e2e-approver has claimed this order: take it over to decide it.');
  await bo.getByRole('link', { name: id, exact: true }).click();
  await hydrated(bo);
  await expect(bo.getByText('e2e-approver is working on this order: take it over to decide it.')).toBeVisible();
  await bo.getByRole('button', { name: 'Take over from e2e-approver' }).click();
  await expect(bo.getByRole('status')).toHaveText(`You are working on order ${id}.`);
  await bo.getByLabel('Comment').fill('Checked with purchasing');
  await bo.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(bo.getByRole('status')).toHaveText(`Order ${id} approved.`);
  await expect(bo.getByText('Approved by e2e-approver-2')).toBeVisible();
  const trail = bo.locator('ol.trail li');
  await expect(trail).toHaveText([
    /workflow asked for: Approval/,
    /e2e-approver claimed it/,
    /e2e-approver-2 took it over: from e2e-approver/,
    /e2e-approver-2 approved: Checked with purchasing/,
  ]);

  // Ana's inbox drops the order on its own; the customer's page follows.
  await expect(row(ana, id)).toHaveCount(0);
  await expect(orderStatus(customer)).toHaveText('Processed');
  for (const p of [ana, bo, customer]) await p.context().close();
});

test('an order decided elsewhere is shown decided, never overwritten', async ({ browser }) => {
  const { id } = await placeOrder(browser, { 'Office chair': 2 });
  const first = await approverPage(browser, 'e2e-approver');
  const second = await approverPage(browser, 'e2e-approver-2');
  await openFromInbox(first, id);
  await openFromInbox(second, id);
  await first.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(first.getByRole('status')).toHaveText(`Order ${id} approved.`);
  // The other approver's open page learns of it without a reload, and offers nothing to click.
  await expect(second.getByText(/^Approved by e2e-approver on /)).toBeVisible();
  await expect(second.getByRole('button', { name: 'Reject' })).toHaveCount(0);
  await first.context().close();
  await second.context().close();
});

test('the queue sorts, searches and filters; bulk approval reports each order', async ({ browser }) => {
  const small = await placeOrder(browser, { 'Office chair': 1 });
  const large = await placeOrder(browser, { 'Standing desk': 4 });
  const middle = await placeOrder(browser, { 'Office chair': 5 });
  const ana = await approverPage(browser, 'e2e-approver');

  await ana.getByLabel('Search').fill(middle.id);
  await ana.getByRole('button', { name: 'Apply' }).click();
  await expect(ana).toHaveURL(new RegExp(`q=${middle.id}`));
  await expect(ana.locator('table.inbox tbody tr')).toHaveCount(1);
  await expect(row(ana, middle.id)).toBeVisible();

  await ana.goto('/inbox?sort=largest&min=150&max=2500');
  await hydrated(ana);
  const ids = await ana.locator('table.inbox tbody tr td:nth-child(2) a').allTextContents();
  const mine = [large.id, middle.id, small.id].filter((id) => ids.includes(id));
  expect(mine).toEqual([large.id, middle.id, small.id]);
  await expect(ana.getByLabel('Sort')).toHaveValue('largest');

  // Bulk: two of ours, one of which someone else decides first.
  const bo = await approverPage(browser, 'e2e-approver-2');
  await row(ana, small.id).getByRole('checkbox').check();
  await row(ana, middle.id).getByRole('checkbox').check();
  await row(bo, middle.id).getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(bo.getByRole('status')).toHaveText(`Order ${middle.id} approved.`);
  await ana.getByLabel('Comment for the selected orders (optional)').fill('Quarter-end batch');
  await ana.getByRole('button', { name: 'Approve selected (2)' }).click();
  const results = ana.getByRole('status', { name: 'Bulk approval' });
  await expect(results).toContainText('1 of 2 approved.');
  await expect(results.getByRole('listitem').filter({ hasText: small.id })).toContainText('Approved.');
  await expect(results.getByRole('listitem').filter({ hasText: middle.id })).toContainText(
    'This order was already decided by e2e-approver-2.',
  );
  await expect(orderStatus(small.customer)).toHaveText('Processed');
  await ana.goto(`/inbox/${small.id}`);
  await hydrated(ana);
  await expect(ana.locator('ol.trail li').last()).toContainText('e2e-approver approved: Quarter-end batch');
  await ana.goto('/inbox?sort=largest&min=150&max=2500');
  await hydrated(ana);

  // Reject from the list, with its reason.
  await row(ana, large.id).getByText('Reject…').click();
  await row(ana, large.id).getByLabel('Reason').fill('Four desks is too many');
  await row(ana, large.id).getByRole('button', { name: `Reject ${large.id}` }).click();
  await expect(ana.getByRole('status').first()).toHaveText(`Order ${large.id} rejected.`);
  await expect(orderStatus(large.customer)).toHaveText('Rejected');
  for (const p of [ana, bo, small.customer, large.customer, middle.customer]) await p.context().close();
});

test('the largest orders need two different approvers, and nobody decides their own order', async ({ browser }) => {
  const { id, customer } = await placeOrder(browser, { 'Standing desk': 10 }, 'boss@example.com');
  const ana = await approverPage(browser, 'e2e-approver');
  const bo = await approverPage(browser, 'e2e-approver-2');

  // e2e-approver-2's e-mail is boss@example.com: the order is theirs.
  await openFromInbox(bo, id);
  await expect(bo.getByText('This order was placed with your e-mail (boss@example.com): another approver must decide it.')).toBeVisible();
  await expect(bo.getByRole('button', { name: 'Approve', exact: true })).toHaveCount(0);

  await openFromInbox(ana, id);
  await ana.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(ana.getByRole('status')).toHaveText(`Order ${id} approved.`);
  await expect(ana.getByText('You gave this order its first approval: a different approver must give the second.')).toBeVisible();
  await expect(orderStatus(customer)).toHaveText('Awaiting approval');

  const admin = await approverPage(browser, 'e2e-admin');
  await openFromInbox(admin, id);
  await expect(admin.locator('dl.facts')).toContainText('Second approval');
  await admin.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(admin.getByRole('status')).toHaveText(`Order ${id} approved.`);
  await expect(orderStatus(customer)).toHaveText('Processed');
  for (const p of [ana, bo, admin, customer]) await p.context().close();
});

test('an approval past its deadline is escalated to the admins', async ({ browser }) => {
  test.setTimeout(90_000);
  const { id, customer } = await placeOrder(browser, { 'Office chair': 4 });
  const ana = await approverPage(browser, 'e2e-approver');
  await expect(row(ana, id).getByRole('cell').nth(6)).toHaveText(/left$/);
  const admin = await approverPage(browser, 'e2e-admin', '/inbox?view=escalated');
  // scripts/e2e-server gives each approval 25 seconds.
  await expect(row(admin, id)).toBeVisible({ timeout: 60_000 });
  await expect(row(admin, id)).toContainText('Escalated to admins');
  await expect(row(ana, id)).toHaveCount(0);
  await admin.getByRole('link', { name: id, exact: true }).click();
  await hydrated(admin);
  await expect(admin.locator('ol.trail li').last()).toHaveText(/workflow escalated it to the admins/);
  await admin.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(admin.getByRole('status')).toHaveText(`Order ${id} approved.`);
  await expect(orderStatus(customer)).toHaveText('Processed');
  for (const p of [ana, admin, customer]) await p.context().close();
});

test('admins set limits, reassign, reset passwords and change roles; the approver unclaims', async ({ browser }) => {
  const admin = await approverPage(browser, 'e2e-admin', '/admin/users');
  const name = `e2e-limited-${Date.now() % 100000}`;
  await admin.getByLabel('Username').fill(name);
  await admin.getByRole('button', { name: 'Add user' }).click();
  const result = admin.getByRole('status', { name: 'Result' });
  await expect(result).toContainText(`Account ${name} created.`);
  const first = (await result.locator('code').textContent())!.trim();

  // An approval limit of 150.00: a 189.00 chair is above it.
  const user = admin.getByRole('row').filter({ hasText: name });
  await user.getByText('Edit', { exact: true }).click();
  await user.getByLabel('Approval limit').fill('150.00');
  await user.getByRole('button', { name: `Save ${name}` }).click();
  await expect(result).toContainText(`${name} updated.`);
  await expect(user.getByRole('cell').nth(3)).toHaveText('$150.00');

  const newcomer = await (await browser.newContext()).newPage();
  const login = async (password: string) => {
    await newcomer.goto('/login?next=/inbox');
    await hydrated(newcomer);
    await newcomer.getByLabel('Username').fill(name);
    await newcomer.getByLabel('Password').fill(password);
    await newcomer.getByRole('button', { name: 'Sign in' }).click();
  };
  await login(first);
  await expect(newcomer.locator('header .who')).toHaveText(name);
  const { id, customer } = await placeOrder(browser, { 'Office chair': 1 });
  await openFromInbox(newcomer, id);
  await newcomer.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(newcomer.getByRole('alert')).toContainText('is above your approval limit of $150.00.');
  await expect(orderStatus(customer)).toHaveText('Awaiting approval');

  // The admin hands the order to the newcomer, who sees it as theirs and gives it back.
  await openFromInbox(admin, id);
  await admin.getByLabel('Reassign to').fill(name);
  await admin.getByRole('button', { name: 'Reassign', exact: true }).click();
  await expect(admin.getByRole('status')).toHaveText(`Order ${id} is now with ${name}.`);
  await expect(newcomer.locator('dl.facts')).toContainText(name);
  await newcomer.getByRole('button', { name: 'Unclaim' }).click();
  await expect(newcomer.getByRole('status')).toHaveText(`Order ${id} is unclaimed.`);
  await expect(admin.locator('dl.facts')).toContainText('nobody');
  await expect(newcomer.locator('ol.trail li')).toContainText([
    new RegExp(`e2e-admin reassigned it: to ${name}`),
    new RegExp(`${name} unclaimed it`),
  ]);

  // A reset password replaces the old one; a new role opens the console.
  await admin.goto('/admin/users');
  await hydrated(admin);
  await user.getByText('Reset password', { exact: true }).click();
  await user.getByRole('button', { name: `Reset password of ${name}` }).click();
  await expect(result).toContainText('Password reset.');
  const second = (await result.locator('code').textContent())!.trim();
  expect(second).not.toEqual(first);
  await user.getByText('Edit', { exact: true }).click();
  await user.getByLabel('Role').selectOption('admin');
  await user.getByRole('button', { name: `Save ${name}` }).click();
  await expect(user.getByRole('cell').nth(1)).toHaveText('admin');

  await newcomer.context().clearCookies();
  await login(first);
  await expect(newcomer.getByRole('alert')).toHaveText('Wrong username or password.');
  await login(second);
  await expect(newcomer.locator('header .who')).toHaveText(name);
  await newcomer.goto('/admin');
  await expect(newcomer.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  for (const p of [admin, newcomer, customer]) await p.context().close();
});
