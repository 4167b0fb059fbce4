package llmgov

params := __PARAMS__

# EU AI Act Art. 12: high-risk systems keep automatic logs over their lifetime.
deny contains sprintf("high-risk system %q runs without automatic logging", [object.get(input, "system", "unknown")]) if {
	input.risk_level in params.risk_levels
	not input.logging_enabled == true
}

deny contains sprintf("high-risk system %q keeps logs for %d days; at least %d are required", [object.get(input, "system", "unknown"), input.log_retention_days, params.min_log_retention_days]) if {
	input.risk_level in params.risk_levels
	input.log_retention_days < params.min_log_retention_days
}
