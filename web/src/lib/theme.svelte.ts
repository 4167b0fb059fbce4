// Light, dark, or the system's choice; remembered in localStorage.
export type Theme = 'system' | 'light' | 'dark';
const KEY = 'llmgov.theme';

class ThemeStore {
	value = $state<Theme>('system');
	constructor() {
		if (typeof localStorage === 'undefined') return;
		const t = localStorage.getItem(KEY);
		if (t === 'light' || t === 'dark') this.value = t;
		this.apply();
	}
	set(t: Theme) {
		this.value = t;
		localStorage.setItem(KEY, t);
		this.apply();
	}
	/** The theme in effect (resolving `system`). */
	get effective(): 'light' | 'dark' {
		if (this.value !== 'system') return this.value;
		return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
	}
	apply() {
		const root = document.documentElement;
		if (this.value === 'system') delete root.dataset.theme;
		else root.dataset.theme = this.value;
	}
}

export const theme = new ThemeStore();
