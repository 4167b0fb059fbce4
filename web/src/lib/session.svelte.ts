// The signed-in session: tokens (kept in sessionStorage, so they live as long as the tab),
// the caller's profile and permissions. The access token is refreshed shortly before it
// expires; a failed refresh ends the session with a message for the login page.
import { goto } from '$app/navigation';
import type { components } from '$lib/api/schema';

type Me = components['schemas']['MeDto'];
type Tokens = components['schemas']['TokenPairDto'];

const KEY = 'llmgov.session';

interface Stored {
	access: string;
	refresh: string;
	expiresAt: number;
}

class Session {
	accessToken = $state<string | null>(null);
	refreshToken = $state<string | null>(null);
	expiresAt = $state(0);
	me = $state<Me | null>(null);
	/** Why the last session ended (shown on the login page), if not by logging out. */
	endedBecause = $state<string | null>(null);
	#timer: ReturnType<typeof setTimeout> | undefined;
	#refreshing: Promise<boolean> | null = null;

	constructor() {
		if (typeof sessionStorage === 'undefined') return;
		try {
			const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Stored | null;
			if (s?.access && s.refresh) this.#set(s.access, s.refresh, s.expiresAt);
		} catch {
			sessionStorage.removeItem(KEY);
		}
	}

	get signedIn(): boolean {
		return this.accessToken !== null;
	}

	/** True when the caller holds `perm` (`resource:action`) in the current workspace. */
	can(perm: string): boolean {
		return this.me?.permissions.includes(perm) ?? false;
	}

	/** Signs in (to `workspaceId`, or the user's first workspace). */
	async login(email: string, password: string, workspaceId?: string): Promise<void> {
		const res = await fetch('/api/v1/auth/login', {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify(workspaceId ? { email, password, workspace_id: workspaceId } : { email, password })
		});
		const body = await res.json().catch(() => null);
		if (!res.ok) {
			const { toApiError } = await import('$lib/api/client');
			throw toApiError(res.status, body);
		}
		this.endedBecause = null;
		this.#accept(body as Tokens);
		await this.loadMe();
	}

	/** The workspace the session is in. */
	get workspace() {
		return this.me?.workspaces.find((w) => w.id === this.me?.user.workspace_id) ?? null;
	}

	/** Signs in again to another of the user's workspaces (the password is asked again:
	 * a token is bound to one workspace), ending the current session's refresh token. */
	async switchWorkspace(workspaceId: string, password: string): Promise<void> {
		const email = this.me?.user.email;
		if (!email) throw new Error('Not signed in.');
		const old = this.refreshToken;
		await this.login(email, password, workspaceId);
		if (old) {
			await fetch('/api/v1/auth/logout', {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: JSON.stringify({ refresh_token: old })
			}).catch(() => undefined);
		}
	}

	async loadMe(): Promise<void> {
		const { api, ok } = await import('$lib/api/client');
		this.me = await ok(api.GET('/api/v1/auth/me'));
	}

	/** Exchanges the refresh token for a new pair; false when that is refused. */
	refresh(): Promise<boolean> {
		if (!this.refreshToken) return Promise.resolve(false);
		this.#refreshing ??= (async () => {
			try {
				const res = await fetch('/api/v1/auth/refresh', {
					method: 'POST',
					headers: { 'content-type': 'application/json' },
					body: JSON.stringify({ refresh_token: this.refreshToken })
				});
				if (!res.ok) return false;
				this.#accept((await res.json()) as Tokens);
				return true;
			} catch {
				return false;
			} finally {
				this.#refreshing = null;
			}
		})();
		return this.#refreshing;
	}

	async logout(): Promise<void> {
		const refresh = this.refreshToken;
		this.#clear();
		this.endedBecause = null;
		if (refresh) {
			await fetch('/api/v1/auth/logout', {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: JSON.stringify({ refresh_token: refresh })
			}).catch(() => undefined);
		}
		await goto('/login');
	}

	/** Ends the session because it can no longer be renewed. */
	expire(reason: string): void {
		if (!this.signedIn) return;
		this.#clear();
		this.endedBecause = reason;
		const here = location.pathname + location.search;
		void goto(`/login?next=${encodeURIComponent(here)}`);
	}

	#accept(t: Tokens): void {
		this.#set(t.access_token, t.refresh_token, Date.now() + t.expires_in * 1000);
	}

	#set(access: string, refresh: string, expiresAt: number): void {
		this.accessToken = access;
		this.refreshToken = refresh;
		this.expiresAt = expiresAt;
		sessionStorage.setItem(KEY, JSON.stringify({ access, refresh, expiresAt } satisfies Stored));
		clearTimeout(this.#timer);
		// Renew a minute before expiry (or at half-life for short tokens).
		const left = expiresAt - Date.now();
		const at = Math.max(5_000, Math.min(left - 60_000, left / 2));
		this.#timer = setTimeout(async () => {
			if (!(await this.refresh())) this.expire('Your session expired. Sign in again to continue.');
		}, at);
	}

	#clear(): void {
		clearTimeout(this.#timer);
		this.accessToken = null;
		this.refreshToken = null;
		this.me = null;
		sessionStorage.removeItem(KEY);
	}
}

export const session = new Session();
