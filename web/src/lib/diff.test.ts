import { describe, expect, it } from 'vitest';
import { diffLines } from './diff';

describe('diffLines', () => {
	it('marks added, removed and kept lines', () => {
		const d = diffLines('a\nb\nc', 'a\nc\nd');
		expect(d).toEqual([
			{ kind: 'same', text: 'a' },
			{ kind: 'del', text: 'b' },
			{ kind: 'same', text: 'c' },
			{ kind: 'add', text: 'd' }
		]);
	});
	it('handles a missing side', () => {
		expect(diffLines('', 'x')).toEqual([{ kind: 'add', text: 'x' }]);
		expect(diffLines('x', '')).toEqual([{ kind: 'del', text: 'x' }]);
	});
});
