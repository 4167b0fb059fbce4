import { describe, expect, it } from 'vitest';
import { NAV, isCurrent } from './nav';

describe('navigation', () => {
	it('marks the current section', () => {
		expect(isCurrent('/', '/')).toBe(true);
		expect(isCurrent('/', '/policies')).toBe(false);
		expect(isCurrent('/policies', '/policies/123')).toBe(true);
		expect(isCurrent('/policies', '/policies-x')).toBe(false);
	});
	it('guards every admin screen with a permission', () => {
		for (const n of NAV.filter((n) => n.href !== '/' && n.href !== '/settings')) expect(n.permission).toBeTruthy();
	});
});
