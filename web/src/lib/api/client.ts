// The typed API client. Paths, parameters and bodies are checked against the types
// generated from the server's OpenAPI document (`schema.d.ts`, `npm run gen:api`), so a
// changed endpoint breaks `npm run build` (which runs svelte-check), not the user.
import createClient from 'openapi-fetch';
import type { paths, components } from './schema';
import { session } from '$lib/session.svelte';

export type Schemas = components['schemas'];

/** The API's error body: `{"error": {"code", "message", "details", "request_id"}}`. */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
		readonly details: unknown = {},
		readonly requestId?: string
	) {
		super(message);
	}
}

/** Turns a failed response body into an `ApiError` with the server's code and message. */
export function toApiError(status: number, body: unknown): ApiError {
	const e = (body as { error?: { code?: string; message?: string; details?: unknown; request_id?: string } })
		?.error;
	if (e && typeof e.code === 'string') {
		return new ApiError(status, e.code, e.message ?? e.code, e.details ?? {}, e.request_id);
	}
	return new ApiError(status, 'HTTP_' + status, `The server answered ${status}.`);
}

/**
 * `fetch` with the session's bearer token. A 401 refreshes the session once and retries;
 * when the refresh fails too, the session ends with a message for the login page.
 */
export async function authedFetch(input: Request): Promise<Response> {
	const retry = input.clone();
	const first = await fetch(withToken(input));
	if (first.status !== 401 || !session.refreshToken) return first;
	if (!(await session.refresh())) {
		session.expire('Your session expired. Sign in again to continue.');
		return first;
	}
	return fetch(withToken(retry));
}

function withToken(req: Request): Request {
	const token = session.accessToken;
	if (token && !req.headers.has('authorization')) {
		req.headers.set('authorization', `Bearer ${token}`);
	}
	return req;
}

export const api = createClient<paths>({ baseUrl: '', fetch: authedFetch });

/** Unwraps an openapi-fetch result: the data, or a thrown `ApiError`. */
export async function ok<T>(
	p: Promise<{ data?: T; error?: unknown; response: Response }>
): Promise<T> {
	const r = await p;
	if (!r.response.ok) throw toApiError(r.response.status, r.error);
	return r.data as T;
}

/** Downloads `path` (with the session's token) as a file named `filename`. */
export async function download(path: string, filename: string): Promise<void> {
	const res = await authedFetch(new Request(path));
	if (!res.ok) throw toApiError(res.status, await res.json().catch(() => null));
	const url = URL.createObjectURL(await res.blob());
	const a = document.createElement('a');
	a.href = url;
	a.download = filename;
	a.click();
	setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A message fit for the user from anything thrown. */
export function errorMessage(e: unknown): string {
	if (e instanceof ApiError) return e.message;
	if (e instanceof TypeError) return 'The server cannot be reached. Check that llmgov is running.';
	return e instanceof Error ? e.message : String(e);
}
