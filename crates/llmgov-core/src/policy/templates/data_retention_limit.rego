package llmgov

params := __PARAMS__

retention := d if {
	d := input.retention_days
} else := d if {
	d := data.platform.datasets[input.dataset].retention_days
}

deny contains sprintf("dataset %q keeps data for %d days; the limit is %d", [input.dataset, retention, params.max_retention_days]) if {
	retention > params.max_retention_days
}

deny contains sprintf("dataset %q keeps data without a retention period; the limit is %d days", [input.dataset, params.max_retention_days]) if {
	input.dataset
	not retention
	params.require_retention
}
