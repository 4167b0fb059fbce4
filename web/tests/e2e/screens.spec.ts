// Every main screen: no serious or critical axe-core violations, in light and dark, and a
// screenshot of each (with the demo data) in the screenshots folder.
import { test, expect } from '@playwright/test';
import { axe, login, shot } from './helpers';

const SCREENS: [string, string, string][] = [
	['overview', '/', 'Overview'],
	['policies', '/policies', 'Policies'],
	['violations', '/violations', 'Violations'],
	['metrics', '/explore?metric=llm.requests&range=7d&group_by=tag:model&stacked=1', 'Metrics'],
	['alerts', '/alerts', 'Alerts'],
	['audit', '/audit', 'Audit trail'],
	['vault', '/vault', 'Data Vault'],
	['admin', '/admin', 'Administration'],
	['settings', '/settings', 'Settings']
];

for (const theme of ['light', 'dark'] as const) {
	test(`main screens pass axe and are captured (${theme})`, async ({ page }) => {
		await page.emulateMedia({ colorScheme: theme });
		await login(page);
		for (const [name, path, heading] of SCREENS) {
			await page.goto(path);
			await expect(page.getByRole('heading', { name: heading, exact: true })).toBeVisible();
			await page.waitForLoadState('networkidle');
			await axe(page, `${name} (${theme})`);
			await shot(page, `${name}-${theme}`);
		}
	});
}

test('detail screens pass axe and are captured', async ({ page }) => {
	await login(page);
	await page.goto('/policies');
	await page.locator('tbody a').first().click();
	await expect(page.getByLabel('Rego source')).toBeVisible();
	await axe(page, 'policy');
	await shot(page, 'policy-detail');
	await page.goto('/vault');
	await page.getByRole('link', { name: 'demo-support-conversations', exact: true }).click();
	await expect(page.getByTestId('commit-row').first()).toBeVisible();
	await axe(page, 'dataset');
	await shot(page, 'dataset-detail');
	await page.getByRole('tab', { name: 'PII findings' }).click();
	await expect(page.getByTestId('pii-summary')).toBeVisible();
	await shot(page, 'dataset-pii');
	await page.getByRole('tab', { name: 'Lineage' }).click();
	await expect(page.getByTestId('lineage')).toBeVisible();
	await axe(page, 'lineage');
	await shot(page, 'dataset-lineage');
	await page.goto('/audit?tab=reports');
	await page.getByRole('button', { name: 'Run report' }).click();
	await expect(page.getByTestId('report')).toBeVisible();
	await shot(page, 'compliance-report');
});

test('usable at phone width', async ({ page }) => {
	await page.setViewportSize({ width: 390, height: 844 });
	await login(page);
	await page.getByRole('button', { name: 'Menu' }).click();
	await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Policies' })).toBeVisible();
	await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
	await axe(page, 'overview (phone)');
	await shot(page, 'overview-phone');
});
