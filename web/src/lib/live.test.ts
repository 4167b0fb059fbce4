import { describe, expect, it, vi } from 'vitest';
vi.mock('$lib/session.svelte', () => ({ session: { accessToken: null, can: () => false } }));
const { backoff, parseEvent } = await import('./live.svelte');

describe('live stream', () => {
	it('backs off exponentially up to 30 s, with jitter', () => {
		expect(backoff(0, () => 0.5)).toBe(500);
		expect(backoff(3, () => 0.5)).toBe(4000);
		expect(backoff(20, () => 0.5)).toBe(30000);
		expect(backoff(0, () => 0)).toBe(375);
		expect(backoff(0, () => 1)).toBe(625);
	});
	it('parses event messages only', () => {
		expect(parseEvent({ type: 'heartbeat', id: 3 })).toBeNull();
		expect(parseEvent({ type: 'event', id: 7, topic: 'alerts.firing', time: 't', data: { a: 1 } })).toEqual({
			id: 7,
			topic: 'alerts.firing',
			time: 't',
			data: { a: 1 }
		});
	});
});
