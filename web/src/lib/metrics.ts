// Small helpers over the metrics API used by several screens.
import { api, ok } from '$lib/api/client';

export interface Window {
	start: string;
	end: string;
}

export function lastWindow(ms: number, end = new Date()): Window {
	return { start: new Date(end.getTime() - ms).toISOString(), end: end.toISOString() };
}

/** Since 00:00 UTC today. */
export function todayUtc(now = new Date()): Window {
	const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
	return { start: start.toISOString(), end: now.toISOString() };
}

/** One aggregate of a metric over a window (null when there is no data or no such metric). */
export async function aggregate(metric: string, aggregation: string, w: Window): Promise<number | null> {
	try {
		const r = await ok(
			api.GET('/api/v1/metrics/aggregates', {
				params: { query: { metric_name: metric, start: w.start, end: w.end, aggregations: aggregation } }
			})
		);
		const g = (r as unknown as { groups?: { values?: Record<string, number | null> }[] }).groups?.[0];
		return g?.values?.[aggregation] ?? null;
	} catch (e) {
		if ((e as { status?: number }).status === 404) return null;
		throw e;
	}
}

export interface Series {
	label: string;
	points: { t: number; v: number }[];
}

/** A metric's time series, one per group (`group_by`), as unix-second points. */
export async function timeseries(
	metric: string,
	aggregation: string,
	interval: string,
	w: Window,
	opts: { group_by?: string; tags?: string; resource_id?: string } = {}
): Promise<Series[]> {
	let r;
	try {
		r = await ok(
			api.GET('/api/v1/metrics/timeseries', {
				params: {
					query: { metric_name: metric, aggregation, interval, start: w.start, end: w.end, ...opts }
				}
			})
		);
	} catch (e) {
		if ((e as { status?: number }).status === 404) return [];
		throw e;
	}
	const toPoints = (ps: { bucket: string; value?: number | null }[]) =>
		ps.filter((p) => p.value != null).map((p) => ({ t: Date.parse(p.bucket) / 1000, v: p.value as number }));
	if (r.series) {
		return r.series.map((s) => ({
			label: Object.values(s.key).filter(Boolean).join(' · ') || '(none)',
			points: toPoints(s.points)
		}));
	}
	return [{ label: metric, points: toPoints(r.points ?? []) }];
}
