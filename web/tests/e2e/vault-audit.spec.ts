import { test, expect } from '@playwright/test';
import { login, token, apiCall } from './helpers';

test('a dataset pushed with PII shows its findings', async ({ page, request }) => {
	const tok = await token(request);
	const d = await apiCall(request, tok, 'POST', '/api/v1/datasets', { name: `e2e-pii-${Date.now()}`, format: 'jsonl' });
	await apiCall(request, tok, 'POST', `/api/v1/datasets/${d.id}/records`, {
		records: [
			{ text: 'Contact Jane Doe at jane.doe@example.com or +1 415 555 0100' },
			{ text: 'No personal data here' }
		],
		message: 'e2e import'
	});
	await login(page);
	await page.goto(`/vault/${d.id}`);
	await expect(page.getByTestId('commit-row')).toHaveCount(1);
	await page.getByRole('tab', { name: 'PII findings' }).click();
	await expect(page.getByTestId('pii-summary')).toContainText('1 of 2 records');
	await expect(page.getByRole('tabpanel')).toContainText('EMAIL_ADDRESS');
	await page.getByRole('tab', { name: 'Records' }).click();
	// Masked by the server by default; someone who may read personal data can unmask.
	await expect(page.getByTestId('record').first()).toContainText('<EMAIL_ADDRESS>');
	await expect(page.getByTestId('record').first()).not.toContainText('jane.doe@example.com');
	await page.getByLabel(/Mask personal data/).uncheck();
	await expect(page.getByTestId('record').first()).toContainText('jane.doe@example.com');
});

test('verify the audit log', async ({ page }) => {
	await login(page);
	await page.goto('/audit');
	await expect(page.getByTestId('audit-row').first()).toBeVisible();
	await page.getByTestId('audit-row').first().getByRole('button').click();
	await expect(page.getByRole('complementary')).toContainText('Entry hash');
	await page.getByRole('tab', { name: 'Verify the log' }).click();
	await page.getByRole('button', { name: 'Verify the whole log' }).click();
	await expect(page.getByTestId('verify-result')).toContainText('The log verifies');
});
