/** The main screens and the permission each needs (the API remains the authority). */
export const NAV: { href: string; label: string; permission?: string }[] = [
	{ href: '/', label: 'Overview' },
	{ href: '/policies', label: 'Policies', permission: 'policies:read' },
	{ href: '/violations', label: 'Violations', permission: 'policies:read' },
	{ href: '/explore', label: 'Metrics', permission: 'metrics:read' },
	{ href: '/alerts', label: 'Alerts', permission: 'metrics:read' },
	{ href: '/audit', label: 'Audit', permission: 'audit:read' },
	{ href: '/vault', label: 'Data Vault', permission: 'datasets:read' },
	{ href: '/admin', label: 'Administration', permission: 'users:read' },
	{ href: '/settings', label: 'Settings' }
];

/** True when `href` is the current section of `path`. */
export function isCurrent(href: string, path: string): boolean {
	return href === '/' ? path === '/' : path === href || path.startsWith(href + '/');
}
