import { defineConfig } from '@playwright/test';

// End-to-end tests in the Debian Chromium (never a downloaded browser) against a real
// `llmgov serve` started by tests/e2e/global-setup.ts on a random port with a fresh data
// directory. LLMGOV_BIN names the binary (default: the debug build in CARGO_TARGET_DIR).
export default defineConfig({
	testDir: 'tests/e2e',
	globalSetup: './tests/e2e/global-setup.ts',
	globalTeardown: './tests/e2e/global-teardown.ts',
	timeout: 60_000,
	expect: { timeout: 15_000 },
	workers: 1,
	retries: 0,
	reporter: [['list']],
	use: {
		baseURL: process.env.LLMGOV_E2E_URL,
		viewport: { width: 1280, height: 800 },
		launchOptions: {
			executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
			args: [
				'--headless',
				'--no-sandbox',
				'--disable-gpu',
				'--disable-dev-shm-usage',
				'--disable-quic',
				'--no-first-run',
				'--disable-background-networking',
				'--disable-component-update',
				'--disable-sync'
			]
		},
		trace: 'off',
		screenshot: 'only-on-failure'
	}
});
