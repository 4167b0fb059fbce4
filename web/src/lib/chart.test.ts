import { describe, expect, it } from 'vitest';
import { align, stack } from './chart';

describe('chart data', () => {
	it('aligns series on one sorted time axis with gaps as null', () => {
		const a = align([
			{ label: 'a', points: [{ t: 20, v: 2 }, { t: 10, v: 1 }] },
			{ label: 'b', points: [{ t: 30, v: 3 }] }
		]);
		expect(a.x).toEqual([10, 20, 30]);
		expect(a.series[0].values).toEqual([1, 2, null]);
		expect(a.series[1].values).toEqual([null, null, 3]);
	});
	it('stacks series cumulatively, keeping gaps', () => {
		expect(stack([[1, 2, null], [3, null, 5]])).toEqual([[1, 2, null], [4, null, 5]]);
	});
});
