import { describe, expect, it } from 'vitest';
import { ago, bytes, num, pct } from './format';

describe('format', () => {
	it('compacts numbers', () => {
		expect(num(null)).toBe('–');
		expect(num(12)).toBe('12');
		expect(num(12345)).toBe('12.3k');
		expect(num(2_500_000)).toBe('2.5M');
		expect(num(0.01234)).toBe('0.0123');
	});
	it('formats percentages and sizes', () => {
		expect(pct(0.125)).toBe('12.5 %');
		expect(pct(0.0012)).toBe('0.12 %');
		expect(bytes(512)).toBe('512 B');
		expect(bytes(1536)).toBe('1.5 KB');
	});
	it('says how long ago', () => {
		const now = Date.parse('2026-12-04T12:00:00Z');
		expect(ago('2026-12-04T11:59:50Z', now)).toBe('just now');
		expect(ago('2026-12-04T11:30:00Z', now)).toBe('30 min ago');
		expect(ago('2026-12-04T09:00:00Z', now)).toBe('3 h ago');
		expect(ago('2026-12-01T12:00:00Z', now)).toBe('3 d ago');
	});
});
