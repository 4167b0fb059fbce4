import { expect, type Page, type APIRequestContext } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { ADMIN } from './global-setup';

export { ADMIN };
export const SHOTS = process.env.LLMGOV_SCREENSHOTS ?? 'screenshots';

export async function login(page: Page, email = ADMIN.email, password = ADMIN.password) {
	await page.goto('/login');
	await page.getByLabel('E-mail').fill(email);
	await page.getByLabel('Password').fill(password);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
}

/** A bearer token for API calls made by the test itself. */
export async function token(request: APIRequestContext, email = ADMIN.email, password = ADMIN.password) {
	const r = await request.post('/api/v1/auth/login', { data: { email, password } });
	expect(r.ok()).toBeTruthy();
	return (await r.json()).access_token as string;
}

export async function apiCall(request: APIRequestContext, tok: string, method: string, path: string, data?: unknown) {
	const r = await request.fetch(path, { method, data, headers: { authorization: `Bearer ${tok}` } });
	if (!r.ok()) throw new Error(`${method} ${path}: ${r.status()} ${await r.text()}`);
	return r.status() === 204 ? null : r.json();
}

/** axe-core on the current page: no serious or critical violations. */
export async function axe(page: Page, name: string) {
	const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
	const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
	expect(
		bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.help} → ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)
	).toEqual([]);
}

export async function shot(page: Page, name: string) {
	mkdirSync(SHOTS, { recursive: true });
	await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}
