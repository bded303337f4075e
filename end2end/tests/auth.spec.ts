import { test, expect, signIn, hydrated } from './fixtures';

test('the inbox sends strangers to the login page', async ({ page }) => {
  await page.goto('/inbox');
  await expect(page).toHaveURL(/\/login\?next=(%2F|\/)inbox$/);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

test('a wrong password is refused', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill('e2e-approver');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong username or password.');
  await page.goto('/inbox');
  await expect(page).toHaveURL(/\/login/);
});

test('signing in goes to the page asked for, signing out ends the session', async ({ page }) => {
  await signIn(page, 'e2e-approver', '/inbox');
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByRole('link', { name: 'Inbox' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Orders' })).toHaveCount(0);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('link', { name: 'Sign in' })).toBeVisible();
  await page.goto('/inbox');
  await expect(page).toHaveURL(/\/login/);
});

test('approvers cannot open the admin pages', async ({ page }) => {
  await signIn(page, 'e2e-approver');
  const response = await page.goto('/admin/orders');
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('alert')).toHaveText('You need the admin role to see this page.');
});
