import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The UI performance script (`scripts/bench-web.sh`): same browser and server as the
// end-to-end suite, but it prints figures instead of checking screens.
export default defineConfig({
	...base,
	testDir: 'tests/perf',
	testMatch: '*.perf.ts',
	timeout: 600_000
});
