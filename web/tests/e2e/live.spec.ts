import { test, expect } from '@playwright/test';
import { login, token, apiCall } from './helpers';

test('ingested metrics update the chart without a reload', async ({ page, request }) => {
	const tok = await token(request);
	const metric = `e2e.live_${Date.now()}`;
	const point = (v: number) => ({
		timestamp: new Date().toISOString(),
		metric_name: metric,
		metric_type: 'gauge',
		value: v,
		tags: { team: 'e2e' }
	});
	await apiCall(request, tok, 'POST', '/api/v1/metrics/ingest', { points: [point(1)] });
	await login(page);
	await page.goto(`/explore?metric=${metric}&live=1&interval=30s&agg=max`);
	const chart = page.locator('figure.chart').first();
	await expect(page.getByTestId('latest-value').first()).toHaveText('1');
	await expect(page.getByTestId('connection')).toHaveText(/Live/);
	await apiCall(request, tok, 'POST', '/api/v1/metrics/ingest', { points: [point(42)] });
	await expect(page.getByTestId('latest-value').first()).toHaveText('42');
	await expect(chart).toHaveAttribute('data-points', /[1-9]/);
});

test('an alert that fires appears without a reload', async ({ page, request }) => {
	const tok = await token(request);
	const metric = `e2e.alert_${Date.now()}`;
	const name = `E2E rule ${Date.now()}`;
	await login(page);
	await page.goto('/alerts');
	await expect(page.getByRole('heading', { name: 'Alerts' })).toBeVisible();
	await apiCall(request, tok, 'POST', '/api/v1/metrics/ingest', {
		points: [{ timestamp: new Date().toISOString(), metric_name: metric, metric_type: 'gauge', value: 1 }]
	});
	await apiCall(request, tok, 'POST', '/api/v1/metrics/alerts', {
		name,
		metric_name: metric,
		aggregation: 'max',
		window: '5m',
		comparator: 'gt',
		threshold: 10,
		for: '0s',
		severity: 'critical'
	});
	await apiCall(request, tok, 'POST', '/api/v1/metrics/ingest', {
		points: [{ timestamp: new Date().toISOString(), metric_name: metric, metric_type: 'gauge', value: 99 }]
	});
	const row = page.getByTestId('alert-row').filter({ hasText: name });
	await expect(row).toContainText('firing');
	await row.getByRole('button', { name: 'Acknowledge' }).click();
	await expect(row).toContainText('Acknowledged');
});
