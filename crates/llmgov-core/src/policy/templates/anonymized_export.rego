package llmgov

params := __PARAMS__

# An export is anonymized when it applies an anonymization profile, when the platform's
# facts say the dataset is anonymized, or when the PII engine found nothing in the exported
# version (input.pii, filled by the vault's export).
anonymized if input.anonymized == true

anonymized if data.platform.datasets[input.dataset].anonymized == true

anonymized if input.pii.total == 0

deny contains sprintf("dataset %q must be anonymized before it is exported: %d PII findings in this version", [input.dataset, input.pii.total]) if {
	input.event_type in params.event_types
	not anonymized
	is_number(input.pii.total)
}

deny contains sprintf("dataset %q must be anonymized before it is exported", [input.dataset]) if {
	input.event_type in params.event_types
	not anonymized
	not is_number(input.pii.total)
}
