/** Short local date-time, e.g. "Dec 4, 11:32:05". */
export function dateTime(iso: string | null | undefined): string {
	if (!iso) return '–';
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return iso;
	return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "3 min ago", "2 h ago", "5 d ago". */
export function ago(iso: string | null | undefined, now = Date.now()): string {
	if (!iso) return '–';
	const s = Math.round((now - new Date(iso).getTime()) / 1000);
	if (s < 45) return 'just now';
	if (s < 3600) return `${Math.round(s / 60)} min ago`;
	if (s < 86400) return `${Math.round(s / 3600)} h ago`;
	return `${Math.round(s / 86400)} d ago`;
}

/** Compact number: 1234 → "1.2k", 0.01234 → "0.0123". */
export function num(v: number | null | undefined, digits = 3): string {
	if (v == null || Number.isNaN(v)) return '–';
	const a = Math.abs(v);
	if (a >= 1e9) return (v / 1e9).toFixed(1) + 'B';
	if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
	if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
	if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString();
	return v.toPrecision(digits);
}

export function usd(v: number | null | undefined): string {
	if (v == null) return '–';
	return v.toLocaleString(undefined, { style: 'currency', currency: 'USD', maximumFractionDigits: v < 10 ? 2 : 0 });
}

export function pct(v: number | null | undefined): string {
	return v == null || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(v < 0.01 ? 2 : 1)} %`;
}

export function bytes(n: number | null | undefined): string {
	if (n == null) return '–';
	const u = ['B', 'KB', 'MB', 'GB', 'TB'];
	let i = 0;
	let v = n;
	while (v >= 1024 && i < u.length - 1) {
		v /= 1024;
		i++;
	}
	return `${i ? v.toFixed(1) : v} ${u[i]}`;
}

/** Time range presets for pickers: label and duration in ms. */
export const RANGES: { id: string; label: string; ms: number; interval: string }[] = [
	{ id: '15m', label: 'Last 15 minutes', ms: 15 * 60e3, interval: '30s' },
	{ id: '1h', label: 'Last hour', ms: 3600e3, interval: '1m' },
	{ id: '6h', label: 'Last 6 hours', ms: 6 * 3600e3, interval: '5m' },
	{ id: '24h', label: 'Last 24 hours', ms: 86400e3, interval: '15m' },
	{ id: '7d', label: 'Last 7 days', ms: 7 * 86400e3, interval: '1h' },
	{ id: '30d', label: 'Last 30 days', ms: 30 * 86400e3, interval: '1d' }
];
