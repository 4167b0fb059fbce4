// UI performance figures (issue: web UI). Prints, asserts nothing about speed:
// - JavaScript shipped for the first screen (brotli as sent, and gzip from the build),
// - time until the overview is interactive (its data loaded and no long task after it),
//   with a cold and a warm browser cache,
// - the audit log with 10,000+ entries: first page, jump to the last page, and frame gaps
//   while scrolling the table.
// Run with `scripts/bench-web.sh`.
import { test, expect, type Page } from '@playwright/test';
import { existsSync, statSync } from 'node:fs';
import { apiCall, login, token } from '../e2e/helpers';

const AUDIT_ENTRIES = Number(process.env.LLMGOV_PERF_AUDIT ?? 10_000);

async function watchLongTasks(page: Page) {
	await page.addInitScript(() => {
		(window as any).__long = [];
		new PerformanceObserver((l) => {
			for (const e of l.getEntries()) (window as any).__long.push([e.startTime, e.duration]);
		}).observe({ type: 'longtask', buffered: true });
	});
}

/** Loads the overview and returns [ready, interactive, long-task ms, JS files]. */
async function overview(page: Page) {
	await page.goto('/');
	await expect(page.locator('.kpis[data-ready="true"]')).toBeVisible({ timeout: 60_000 });
	// Let anything the data triggered (charts) finish before reading the long tasks.
	await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 500))));
	return page.evaluate(() => {
		const ready = performance.getEntriesByName('llmgov:overview-ready')[0].startTime;
		const long: [number, number][] = (window as any).__long;
		const lastLongEnd = Math.max(0, ...long.map(([s, d]) => s + d));
		const scripts = performance
			.getEntriesByType('resource')
			.filter((r) => (r as PerformanceResourceTiming).initiatorType === 'script' || r.name.endsWith('.js'))
			.map((r) => {
				const t = r as PerformanceResourceTiming;
				return { url: new URL(t.name).pathname, sent: t.encodedBodySize, size: t.decodedBodySize };
			});
		return {
			ready,
			interactive: Math.max(ready, lastLongEnd),
			longTaskMs: long.reduce((a, [, d]) => a + d, 0),
			scripts
		};
	});
}

test('UI performance figures', async ({ page, request, context }) => {
	await watchLongTasks(page);
	await login(page);
	const cdp = await context.newCDPSession(page);

	// Cold: empty HTTP cache, a fresh document (the session stays in the tab).
	await page.goto('about:blank');
	await cdp.send('Network.clearBrowserCache');
	const cold = await overview(page);
	await page.goto('about:blank');
	const warm = await overview(page);

	const sent = cold.scripts.reduce((a, s) => a + s.sent, 0);
	const raw = cold.scripts.reduce((a, s) => a + s.size, 0);
	const gz = cold.scripts.reduce((a, s) => {
		const f = `build${s.url}.gz`;
		return a + (existsSync(f) ? statSync(f).size : s.sent);
	}, 0);
	console.log(`first screen JavaScript: ${cold.scripts.length} files, ${(raw / 1024).toFixed(1)} KB, ` +
		`${(sent / 1024).toFixed(1)} KB as sent (brotli), ${(gz / 1024).toFixed(1)} KB gzip (target <= 300 KB gzip)`);
	for (const [name, r] of [['cold cache', cold], ['warm cache', warm]] as const) {
		console.log(`overview (${name}): data shown at ${r.ready.toFixed(0)} ms, interactive at ` +
			`${r.interactive.toFixed(0)} ms, long tasks ${r.longTaskMs.toFixed(0)} ms (target <= 2000 ms)`);
	}

	// 10,000 audit entries: each policy created in a bulk request is one entry.
	const tok = await token(request);
	let total = (await apiCall(request, tok, 'GET', '/api/v1/audit/logs?limit=1')).total as number;
	for (let batch = 0; total < AUDIT_ENTRIES; batch++) {
		const operations = Array.from({ length: 100 }, (_, i) => ({
			op: 'create',
			policy: {
				name: `perf-${batch}-${i}`,
				policy_type: 'content',
				status: 'draft',
				definition: { language: 'rego', source: 'package llmgov\n\ndeny contains "never" if { input.never }\n' }
			}
		}));
		await apiCall(request, tok, 'POST', '/api/v1/policies/bulk', { operations });
		total = (await apiCall(request, tok, 'GET', '/api/v1/audit/logs?limit=1')).total as number;
	}
	await page.goto('/audit');
	let t = Date.now();
	await expect(page.getByRole('button', { name: /^Show entry / }).first()).toBeVisible();
	const firstPage = Date.now() - t;
	const pages = Math.ceil(total / 50);
	t = Date.now();
	await page.getByRole('button', { name: 'Last page' }).click();
	await expect(page.getByRole('button', { name: 'Show entry 0', exact: true })).toBeVisible();
	const lastPage = Date.now() - t;
	const frames = await page.evaluate(
		() =>
			new Promise<number[]>((ok) => {
				const gaps: number[] = [];
				let prev = performance.now();
				const step = () => {
					const now = performance.now();
					gaps.push(now - prev);
					prev = now;
					window.scrollBy(0, 40);
					if (window.innerHeight + window.scrollY + 1 >= document.body.scrollHeight || gaps.length > 600) ok(gaps);
					else requestAnimationFrame(step);
				};
				window.scrollTo(0, 0);
				requestAnimationFrame(step);
			})
	);
	const worst = Math.max(...frames.slice(1));
	console.log(`audit log with ${total.toLocaleString()} entries (${pages} pages of 50): first page in ` +
		`${firstPage} ms, jump to the last page in ${lastPage} ms (as seen by the test driver)`);
	console.log(`scrolling the audit table: ${frames.length} frames, worst frame gap ${worst.toFixed(1)} ms`);
	expect(total).toBeGreaterThanOrEqual(AUDIT_ENTRIES);
});
