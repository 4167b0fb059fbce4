// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import Pager from './Pager.svelte';

describe('Pager', () => {
	it('shows the position and pages forward and back', () => {
		const target = document.createElement('div');
		const pages: number[] = [];
		const c = mount(Pager, { target, props: { page: 2, limit: 10, total: 35, onpage: (p: number) => pages.push(p) } });
		expect(target.textContent).toContain('Page 2 of 4');
		const [prev, next] = target.querySelectorAll('button');
		prev.click();
		next.click();
		flushSync();
		expect(pages).toEqual([1, 3]);
		unmount(c);
	});
	it('disables what leads nowhere', () => {
		const target = document.createElement('div');
		const c = mount(Pager, { target, props: { page: 1, limit: 10, total: 5, onpage: () => {} } });
		const [prev, next] = target.querySelectorAll('button');
		expect(prev.disabled).toBe(true);
		expect(next.disabled).toBe(true);
		unmount(c);
	});
});
