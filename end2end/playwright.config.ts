import { defineConfig, devices } from '@playwright/test';

// The release build on a fresh SQLite file (scripts/e2e-server), driven by Debian's chromium.
// Playwright never downloads a browser here.
const port = process.env.E2E_PORT ?? '3917';
const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: 'list',
  use: {
    baseURL,
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: {
          executablePath: '/usr/bin/chromium',
          args: ['--no-sandbox', '--disable-dev-shm-usage'],
        },
      },
    },
  ],
  webServer: {
    command: 'bash ../scripts/e2e-server',
    url: `${baseURL}/healthz`,
    env: { E2E_PORT: port },
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
