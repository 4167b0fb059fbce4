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

test('switching workspaces signs in again to the other workspace', async ({ page, request }) => {
	const tok = await token(request);
	const stamp = Date.now();
	const email = `two-ws-${stamp}@e2e.test`;
	const password = 'Two-Workspaces-Passw0rd!';
	const user = await apiCall(request, tok, 'POST', '/api/v1/users', {
		email,
		username: `twows${stamp}`,
		password,
		roles: ['policy_manager']
	});
	const ws = await apiCall(request, tok, 'POST', '/api/v1/workspaces', { name: `E2E second ${stamp}` });
	await apiCall(request, tok, 'POST', `/api/v1/workspaces/${ws.id}/members`, { user_id: user.id, roles: ['viewer'] });

	await login(page, email, password);
	const switcher = page.getByTestId('workspace-switcher');
	await expect(switcher).toBeVisible();
	const first = await switcher.inputValue();
	expect(first).not.toBe(ws.id);
	await expect(page.getByRole('link', { name: 'Policies', exact: true })).toBeVisible();

	// A wrong password leaves the session where it was.
	await switcher.selectOption(ws.id);
	const dialog = page.getByRole('dialog');
	await expect(dialog).toContainText(`Switch to E2E second ${stamp}`);
	await dialog.getByLabel('Password').fill('not-the-password');
	await dialog.getByRole('button', { name: 'Switch workspace' }).click();
	await expect(dialog.getByRole('alert')).toBeVisible();
	await dialog.getByRole('button', { name: 'Cancel' }).click();
	await expect(switcher).toHaveValue(first);

	// The right one: a fresh start in the other workspace, with the roles held there.
	await switcher.selectOption(ws.id);
	await dialog.getByLabel('Password').fill(password);
	// The switch ends in a full page load; wait for it before navigating again.
	const reloaded = page.waitForEvent('load');
	await dialog.getByRole('button', { name: 'Switch workspace' }).click();
	await reloaded;
	await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
	await expect(page.getByTestId('workspace-switcher')).toHaveValue(ws.id);
	await page.goto('/policies');
	await expect(page.getByRole('button', { name: /New policy/ })).toHaveCount(0);
});
