// Live updates: one WebSocket to /ws/v1/events/stream carrying every topic the caller may
// read, with reconnection (exponential backoff with jitter), resumption from the last
// event id, and a connection state the layout shows.
import { session } from '$lib/session.svelte';

export type LiveState = 'idle' | 'connecting' | 'live' | 'reconnecting';

export interface LiveEvent {
	id: number;
	topic: string;
	time: string;
	data: unknown;
}

type Listener = (e: LiveEvent) => void;

/** Topic groups and the permission that lets the caller subscribe to them. */
const GROUPS: { id: string; topics: string[]; permission: string }[] = [
	{ id: 'metrics', topics: ['metrics.points'], permission: 'metrics:read' },
	{
		id: 'alerts',
		topics: ['alerts.pending', 'alerts.firing', 'alerts.resolved', 'alerts.acknowledged', 'alerts.snoozed'],
		permission: 'metrics:read'
	},
	{ id: 'violations', topics: ['policy.violation'], permission: 'policies:read' }
];

/** Delay before reconnect attempt `n` (0-based): 0.5 s doubling to 30 s, ±25 % jitter. */
export function backoff(n: number, random: () => number = Math.random): number {
	const base = Math.min(30_000, 500 * 2 ** Math.min(n, 10));
	return Math.round(base * (0.75 + random() * 0.5));
}

/** Splits the server's `event` message into a `LiveEvent`; null for other messages. */
export function parseEvent(msg: Record<string, unknown>): LiveEvent | null {
	if (msg.type !== 'event' || typeof msg.topic !== 'string' || typeof msg.id !== 'number') return null;
	return { id: msg.id, topic: msg.topic, time: String(msg.time ?? ''), data: msg.data };
}

class Live {
	state = $state<LiveState>('idle');
	/** Events received since the page loaded (for a small "live" counter). */
	received = $state(0);
	#ws: WebSocket | null = null;
	#attempt = 0;
	#lastId: number | null = null;
	#seen = new Set<number>();
	#timer: ReturnType<typeof setTimeout> | undefined;
	#listeners = new Map<string, Set<Listener>>();
	#token: string | null = null;

	/** Calls `fn` for every event whose topic starts with `prefix`; returns the unsubscriber. */
	on(prefix: string, fn: Listener): () => void {
		let set = this.#listeners.get(prefix);
		if (!set) this.#listeners.set(prefix, (set = new Set()));
		set.add(fn);
		return () => set.delete(fn);
	}

	/** Connects (or reconnects with a new token); idempotent for the same token. */
	start(): void {
		const token = session.accessToken;
		if (!token) return this.stop();
		if (this.#ws && this.#token === token) return;
		this.#token = token;
		this.#open();
	}

	stop(): void {
		clearTimeout(this.#timer);
		const ws = this.#ws;
		this.#ws = null;
		this.#token = null;
		ws?.close(1000);
		this.state = 'idle';
	}

	#open(): void {
		clearTimeout(this.#timer);
		const old = this.#ws;
		this.#ws = null;
		old?.close(1000);
		if (!this.#token) return;
		this.state = this.#attempt === 0 ? 'connecting' : 'reconnecting';
		const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
		const url = `${proto}//${location.host}/ws/v1/events/stream?access_token=${encodeURIComponent(this.#token)}`;
		const ws = new WebSocket(url);
		this.#ws = ws;
		ws.onmessage = (m) => {
			if (this.#ws !== ws) return;
			let msg: Record<string, unknown>;
			try {
				msg = JSON.parse(String(m.data));
			} catch {
				return;
			}
			if (msg.type === 'welcome') {
				this.#attempt = 0;
				this.state = 'live';
				this.#subscribe(ws);
			} else if (msg.type === 'heartbeat') {
				ws.send(JSON.stringify({ type: 'ping' }));
			} else {
				const e = parseEvent(msg);
				if (e) this.#dispatch(e);
			}
		};
		ws.onclose = () => {
			if (this.#ws !== ws) return;
			this.#ws = null;
			this.state = 'reconnecting';
			const delay = backoff(this.#attempt++);
			this.#timer = setTimeout(() => {
				// The token may have been refreshed meanwhile.
				this.#token = session.accessToken;
				this.#open();
			}, delay);
		};
	}

	#subscribe(ws: WebSocket): void {
		for (const g of GROUPS) {
			if (!session.can(g.permission)) continue;
			const sub: Record<string, unknown> = { type: 'subscribe', id: g.id, topics: g.topics };
			if (this.#lastId !== null) sub.since = this.#lastId;
			ws.send(JSON.stringify(sub));
		}
	}

	#dispatch(e: LiveEvent): void {
		// Several subscriptions replay after a reconnect: drop what was seen already.
		if (this.#seen.has(e.id)) return;
		this.#seen.add(e.id);
		if (this.#seen.size > 2000) this.#seen.delete(this.#seen.values().next().value!);
		this.#lastId = Math.max(this.#lastId ?? 0, e.id);
		this.received++;
		for (const [prefix, set] of this.#listeners) {
			if (e.topic.startsWith(prefix)) for (const fn of set) fn(e);
		}
	}
}

export const live = new Live();
