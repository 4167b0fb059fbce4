// Starts `llmgov serve --demo` on a free port with a fresh data directory and the built UI,
// waits until it is ready and the demo data is made, and hands the URL to the tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ADMIN = { email: 'admin@e2e.test', password: 'E2e-Admin-Passw0rd!' };

function freePort(): Promise<number> {
	return new Promise((ok, fail) => {
		const s = createServer();
		s.once('error', fail);
		s.listen(0, '127.0.0.1', () => {
			const port = (s.address() as { port: number }).port;
			s.close(() => ok(port));
		});
	});
}

export default async function setup() {
	const bin =
		process.env.LLMGOV_BIN ??
		join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME ?? '/root', '.cache/llmgov-target'), 'debug/llmgov');
	const dataDir = mkdtempSync(join(tmpdir(), 'llmgov-e2e-'));
	const port = await freePort();
	const url = `http://127.0.0.1:${port}`;
	const child = spawn(bin, ['serve', '--demo', '--listen', `127.0.0.1:${port}`], {
		env: {
			...process.env,
			LLMGOV_DATA_DIR: dataDir,
			LLMGOV_ADMIN_EMAIL: ADMIN.email,
			LLMGOV_ADMIN_PASSWORD: ADMIN.password,
			LLMGOV_SERVER__UI_DIR: resolve('build'),
			LLMGOV_VAULT__PASSPHRASE: 'e2e-vault-passphrase-not-secret',
			LLMGOV_METRICS__ALERT_EVALUATION_INTERVAL_SECS: '2',
			LLMGOV_LOG__FORMAT: 'json',
			RUST_LOG: 'warn'
		},
		stdio: ['ignore', 'pipe', 'pipe']
	});
	let out = '';
	child.stdout.on('data', (d) => (out += d));
	child.stderr.on('data', (d) => (out += d));
	const exited = new Promise<never>((_, fail) =>
		child.once('exit', (code) => fail(new Error(`llmgov exited (${code}) before it was ready:\n${out.slice(-4000)}`)))
	);
	// Ready when the demo says so (it runs through the API once the server listens).
	const ready = new Promise<void>((ok) => {
		const check = () => {
			if (out.includes('Demo data is ready')) ok();
			else setTimeout(check, 200);
		};
		check();
	});
	const timeout = new Promise<never>((_, fail) =>
		setTimeout(() => fail(new Error(`llmgov not ready after 240 s:\n${out.slice(-4000)}`)), 240_000)
	);
	await Promise.race([ready, exited, timeout]);
	process.env.LLMGOV_E2E_URL = url;
	writeFileSync(join(tmpdir(), 'llmgov-e2e.pid'), String(child.pid));
	child.unref();
	(child.stdout as unknown as { unref?: () => void }).unref?.();
	(child.stderr as unknown as { unref?: () => void }).unref?.();
}
