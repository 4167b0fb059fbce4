import { test, expect } from '@playwright/test';
import { login, token, apiCall } from './helpers';

test('create a policy from a template, activate it and see it evaluated', async ({ page, request }) => {
	await login(page);
	await page.goto('/policies');
	await page.getByRole('button', { name: 'New policy from template' }).click();
	const dialog = page.getByRole('dialog');
	await dialog.getByLabel('Template').selectOption('max_tokens');
	const name = `E2E token cap ${Date.now()}`;
	await dialog.getByLabel('Name').fill(name);
	await dialog.getByRole('button', { name: 'Create' }).click();
	await expect(page.getByRole('heading', { name })).toBeVisible();
	if (await page.getByRole('button', { name: 'Activate' }).isVisible()) {
		await page.getByRole('button', { name: 'Activate' }).click();
	}
	await expect(page.getByTestId('policy-status')).toHaveText('active');

	// A compile error is shown at its line as the user types, before saving...
	const editor = page.getByLabel('Rego source');
	const source = await editor.inputValue();
	await expect(page.getByTestId('rego-check')).toHaveText('✓ Compiles');
	await editor.fill(source + '\nthis is not rego {');
	await expect(page.getByTestId('rego-error')).toContainText(/Line \d+/);
	await expect(page.getByTestId('rego-check')).toContainText('Does not compile');
	// ...and saving it is refused at the same line.
	await page.getByRole('button', { name: 'Save new version' }).click();
	await expect(page.getByTestId('rego-error')).toContainText(/Line \d+/);
	await editor.fill(source);
	await expect(page.getByTestId('rego-check')).toHaveText('✓ Compiles');
	await expect(page.getByTestId('rego-error')).toHaveCount(0);

	// The playground runs it without recording.
	await page.getByRole('tab', { name: 'Playground' }).click();
	await page.getByLabel('Input (JSON)').fill(JSON.stringify({ model: 'gpt-4o', tokens: { input: 500000, output: 0 } }));
	await page.getByRole('button', { name: 'Dry run' }).click();
	await expect(page.getByTestId('playground-result')).toContainText('violations');

	// An application's guardrail call is evaluated against it and shows up as a violation.
	const tok = await token(request);
	const outcome = await apiCall(request, tok, 'POST', '/api/v1/policies/evaluate', {
		input: { model: 'gpt-4o', team: 'e2e', tokens: { input: 500000, output: 0 } }
	});
	expect(JSON.stringify(outcome.results)).toContain(name);
	await page.getByRole('tab', { name: 'Violations' }).click();
	await expect(page.getByRole('tabpanel').locator('tbody tr').first()).not.toContainText('No violations');
});
