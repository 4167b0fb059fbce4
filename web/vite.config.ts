import adapter from '@sveltejs/adapter-static';
import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

// The UI talks to the API on the same origin. `npm run dev` proxies to a local
// `llmgov serve` (LLMGOV_URL, default http://127.0.0.1:8080).
const api = process.env.LLMGOV_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
	plugins: [
		sveltekit({
			compilerOptions: {
				runes: ({ filename }) =>
					filename.split(/[/\\]/).includes('node_modules') ? undefined : true
			},
			// A static single-page app: every route falls back to index.html, served by
			// the llmgov binary; .br/.gz siblings let it send compressed assets.
			adapter: adapter({ fallback: 'index.html', precompress: true, strict: true }),
			csp: {
				mode: 'hash',
				directives: {
					'default-src': ['self'],
					'script-src': ['self'],
					'style-src': ['self', 'unsafe-inline'],
					'img-src': ['self', 'data:'],
					'connect-src': ['self', 'ws:', 'wss:'],
					'object-src': ['none'],
					'base-uri': ['self'],
					'form-action': ['self']
				}
			}
		})
	],
	server: {
		proxy: {
			'/api': api,
			'/health': api,
			'/sse': api,
			'/ws': { target: api.replace(/^http/, 'ws'), ws: true }
		}
	},
	// Component tests mount Svelte's browser build.
	resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
	test: {
		include: ['src/**/*.test.ts'],
		environment: 'node'
	}
});
