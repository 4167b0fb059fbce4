import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default async function teardown() {
	const file = join(tmpdir(), 'llmgov-e2e.pid');
	try {
		process.kill(Number(readFileSync(file, 'utf8')), 'SIGTERM');
	} catch {
		/* already gone */
	}
	rmSync(file, { force: true });
}
