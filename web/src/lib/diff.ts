// Line diff (longest common subsequence) for before/after views. Inputs are small JSON
// documents; beyond 2,000 lines a side it falls back to "all removed, all added".
export type DiffLine = { kind: 'same' | 'add' | 'del'; text: string };

export function diffLines(a: string, b: string): DiffLine[] {
	const x = a ? a.split('\n') : [];
	const y = b ? b.split('\n') : [];
	if (x.length > 2000 || y.length > 2000) {
		return [...x.map((text) => ({ kind: 'del' as const, text })), ...y.map((text) => ({ kind: 'add' as const, text }))];
	}
	const n = x.length;
	const m = y.length;
	const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
	for (let i = n - 1; i >= 0; i--)
		for (let j = m - 1; j >= 0; j--)
			lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
	const out: DiffLine[] = [];
	let i = 0;
	let j = 0;
	while (i < n && j < m) {
		if (x[i] === y[j]) {
			out.push({ kind: 'same', text: x[i] });
			i++;
			j++;
		} else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ kind: 'del', text: x[i++] });
		else out.push({ kind: 'add', text: y[j++] });
	}
	while (i < n) out.push({ kind: 'del', text: x[i++] });
	while (j < m) out.push({ kind: 'add', text: y[j++] });
	return out;
}
