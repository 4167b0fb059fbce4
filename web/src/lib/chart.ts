/** Series colours, readable on both themes. */
export function palette(dark: boolean): string[] {
	return dark
		? ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#ff7b72', '#39c5cf', '#e3b341']
		: ['#0b63ce', '#1a7f37', '#9a6700', '#bf3989', '#8250df', '#cf222e', '#1b7c83', '#7d4e00'];
}

/** Cumulative sums for a stacked chart (nulls count as 0 below, stay null on top). */
export function stack(ys: (number | null)[][]): (number | null)[][] {
	const out: (number | null)[][] = [];
	const acc: number[] = new Array(ys[0]?.length ?? 0).fill(0);
	for (const y of ys) {
		out.push(
			y.map((v, i) => {
				if (v == null) return null;
				acc[i] += v;
				return acc[i];
			})
		);
	}
	return out;
}

/** Aligns points of several series onto one sorted time axis (unix seconds). */
export function align(
	series: { label: string; points: { t: number; v: number }[] }[]
): { x: number[]; series: { label: string; values: (number | null)[] }[] } {
	const times = [...new Set(series.flatMap((s) => s.points.map((p) => p.t)))].sort((a, b) => a - b);
	const index = new Map(times.map((t, i) => [t, i]));
	return {
		x: times,
		series: series.map((s) => {
			const values: (number | null)[] = new Array(times.length).fill(null);
			for (const p of s.points) values[index.get(p.t)!] = p.v;
			return { label: s.label, values };
		})
	};
}
