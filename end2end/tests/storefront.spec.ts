import { test, expect, Storefront, orderStatus } from './fixtures';

test('the total follows the chosen quantities', async ({ page }) => {
  const shop = new Storefront(page);
  await shop.goto();
  await expect(page.getByRole('heading', { name: 'Order supplies' })).toBeVisible();
  await expect(shop.total()).toHaveText('Total: $0.00');
  await shop.quantity('Notebook').fill('2');
  await expect(shop.total()).toHaveText('Total: $9.00');
  await shop.quantity('Pen set').fill('3');
  await expect(shop.total()).toHaveText('Total: $47.97');
  await shop.quantity('Notebook').fill('0');
  await expect(shop.total()).toHaveText('Total: $38.97');
});

test('a small order is processed without approval', async ({ page }) => {
  const shop = new Storefront(page);
  await shop.goto();
  const id = await shop.order({ Notebook: 2 });
  await expect(orderStatus(page)).toHaveText('Processed');
  await expect(page.getByRole('heading', { name: `Order ${id}` })).toBeVisible();
  await expect(page.getByRole('cell', { name: '$9.00' })).toBeVisible();
});

test('bad input is refused and places no order', async ({ page }) => {
  const shop = new Storefront(page);
  await shop.goto();
  await page.getByLabel('Your name').fill('Ada Customer');
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page.getByRole('alert')).toHaveText('Choose at least one product.');
  await expect(page).toHaveURL(/\/$/);

  await shop.quantity('Desk lamp').fill('1');
  await page.getByLabel('Email').fill('not-an-email');
  // The browser's own check would stop an invalid address; the server must refuse it too.
  await page.getByLabel('Email').evaluate((el) => el.setAttribute('type', 'text'));
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page.getByRole('alert')).toContainText('valid e-mail address');
  await expect(page).toHaveURL(/\/$/);
});

test('an unknown order link says so', async ({ page }) => {
  const response = await page.goto('/orders/0123456789abcdef0123456789abcdef');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Order not found' })).toBeVisible();
});
