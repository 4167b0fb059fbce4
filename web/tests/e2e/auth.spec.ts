import { test, expect } from '@playwright/test';
import { ADMIN, axe, login, shot, token, apiCall } from './helpers';

test('a wrong password is refused with a message; the right one signs in; sign out', async ({ page }) => {
	await page.goto('/');
	await expect(page).toHaveURL(/\/login/);
	await axe(page, 'login');
	await shot(page, 'login');
	await page.getByLabel('E-mail').fill(ADMIN.email);
	await page.getByLabel('Password').fill('not-the-password');
	await page.getByRole('button', { name: 'Sign in' }).click();
	await expect(page.getByRole('alert')).toContainText(/invalid|password/i);
	await login(page);
	await expect(page.getByTestId('connection')).toHaveText(/Live/);
	await page.getByRole('button', { name: 'Sign out' }).click();
	await expect(page).toHaveURL(/\/login/);
});

test('a session that can no longer be renewed ends with a clear message', async ({ page }) => {
	await login(page);
	// Break both tokens: the next call fails, the refresh fails, the user is told.
	await page.evaluate(() => {
		const s = JSON.parse(sessionStorage.getItem('llmgov.session')!);
		sessionStorage.setItem('llmgov.session', JSON.stringify({ ...s, access: 'x.y.z', refresh: 'nope' }));
	});
	await page.reload();
	await expect(page).toHaveURL(/\/login/);
	await expect(page.getByRole('status')).toContainText('session expired');
});

test('a viewer sees no admin actions', async ({ page, request }) => {
	const tok = await token(request);
	const email = `viewer-${Date.now()}@e2e.test`;
	await apiCall(request, tok, 'POST', '/api/v1/users', {
		email,
		username: `viewer${Date.now()}`,
		password: 'Viewer-Passw0rd!',
		roles: ['viewer']
	});
	await login(page, email, 'Viewer-Passw0rd!');
	const nav = page.getByRole('navigation', { name: 'Main' });
	await expect(nav.getByRole('link', { name: 'Overview' })).toBeVisible();
	await expect(nav.getByRole('link', { name: 'Administration' })).toHaveCount(0);
	await page.goto('/policies');
	await expect(page.getByRole('heading', { name: 'Policies' })).toBeVisible();
	await expect(page.getByRole('button', { name: /New policy/ })).toHaveCount(0);
	// The API stays the authority: a direct visit to the admin screen is refused by it.
	await page.goto('/admin');
	await expect(page.getByRole('alert')).toContainText(/permission|forbidden|not allowed/i);
});
