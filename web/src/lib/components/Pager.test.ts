// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import Pager from './Pager.svelte';

function buttons(target: HTMLElement) {
	const b = [...target.querySelectorAll('button')];
	const by = (name: string) => b.find((x) => (x.getAttribute('aria-label') ?? x.textContent) === name)!;
	return { first: by('First page'), prev: by('Previous'), next: by('Next'), last: by('Last page') };
}

describe('Pager', () => {
	it('shows the position and pages forward, back, to the ends', () => {
		const target = document.createElement('div');
		const pages: number[] = [];
		const c = mount(Pager, { target, props: { page: 2, limit: 10, total: 35, onpage: (p: number) => pages.push(p) } });
		flushSync();
		expect(target.textContent).toContain('of 4');
		expect(target.querySelector('input')!.value).toBe('2');
		const b = buttons(target);
		b.prev.click();
		b.next.click();
		b.first.click();
		b.last.click();
		flushSync();
		expect(pages).toEqual([1, 3, 1, 4]);
		unmount(c);
	});
	it('jumps to a typed page and refuses one out of range', () => {
		const target = document.createElement('div');
		document.body.append(target);
		const pages: number[] = [];
		const c = mount(Pager, { target, props: { page: 1, limit: 50, total: 10_000, onpage: (p: number) => pages.push(p) } });
		flushSync();
		expect(target.textContent).toContain('of 200');
		const input = target.querySelector('input')!;
		const form = target.querySelector('form')!;
		for (const [text, want] of [['137', 137], ['0', null], ['201', null], ['x', null]] as const) {
			input.value = text;
			input.dispatchEvent(new Event('input'));
			form.dispatchEvent(new Event('submit', { cancelable: true }));
			flushSync();
			if (want === null) expect(input.value).toBe('1');
			else expect(pages.at(-1)).toBe(want);
		}
		expect(pages).toEqual([137]);
		unmount(c);
		target.remove();
	});
	it('disables what leads nowhere', () => {
		const target = document.createElement('div');
		const c = mount(Pager, { target, props: { page: 1, limit: 10, total: 5, onpage: () => {} } });
		const b = buttons(target);
		for (const x of [b.first, b.prev, b.next, b.last]) expect(x.disabled).toBe(true);
		unmount(c);
	});
});
