import { test as base, expect, type Page } from '@playwright/test';

export const PASSWORD = 'e2e-password-123';

/** Waits until the wasm bundle has hydrated the page, so client-side behaviour is live. */
export async function hydrated(page: Page) {
  await page.locator('main[data-hydrated]').waitFor();
}

export class Storefront {
  constructor(private page: Page) {}

  async goto() {
    await this.page.goto('/');
    await hydrated(this.page);
  }

  quantity(product: string) {
    return this.page.getByLabel(`${product} quantity`);
  }

  total() {
    return this.page.getByText(/^Total: /);
  }

  /** Orders the given quantities and returns the new order's id (from its page). */
  async order(quantities: Record<string, number>, name = 'Ada Customer', email = 'ada@example.com') {
    for (const [product, n] of Object.entries(quantities)) {
      await this.quantity(product).fill(String(n));
    }
    await this.page.getByLabel('Your name').fill(name);
    await this.page.getByLabel('Email').fill(email);
    await this.page.getByRole('button', { name: 'Place order' }).click();
    await expect(this.page).toHaveURL(/\/orders\/[0-9a-f]{44}$/);
    const heading = await this.page.getByRole('heading', { level: 1 }).textContent();
    const id = heading!.replace(/^Order /, '').trim();
    expect(id).toMatch(/^ORD-/);
    return id;
  }
}

/** The customer's order page; it refreshes itself until the order is final. */
export function orderStatus(page: Page) {
  return page.getByRole('status');
}

export async function signIn(page: Page, username: string, next?: string) {
  await page.goto(next ? `/login?next=${encodeURIComponent(next)}` : '/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('header .who')).toHaveText(username);
}

/** Opens an order from the inbox by its id. */
export async function openFromInbox(page: Page, id: string) {
  await page.goto('/inbox');
  await hydrated(page);
  await page.getByRole('link', { name: id, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(`Order ${id}`);
  await hydrated(page);
}

/**
 * Fails a test when the page logs an error or throws (hydration mismatches, wasm panics,
 * server errors). Chromium also logs every 4xx response; those are the app answering bad
 * input or a missing page as it should, so they are left to the tests' own assertions.
 */
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('console', (msg) => {
        const expected4xx = /^Failed to load resource: the server responded with a status of 4\d\d/;
        if (msg.type() === 'error' && !expected4xx.test(msg.text())) errors.push(msg.text());
      });
      page.on('pageerror', (err) => errors.push(err.message));
      await use(errors);
      expect(errors, 'errors in the browser console').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
