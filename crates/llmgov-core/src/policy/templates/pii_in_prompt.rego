package llmgov

params := __PARAMS__

# Personal data and secrets found by the platform's detectors (the PII engine fills
# input.detections when it runs) or by the patterns below.
patterns := {
	"email": `[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`,
	"credit_card": `\b(?:\d[ -]?){13,16}\b`,
	"us_ssn": `\b\d{3}-\d{2}-\d{4}\b`,
	"api_key": `\b(?:sk|pk|lgv|ghp|xox[bp])[-_][A-Za-z0-9_-]{16,}\b`,
	"aws_access_key": `\bAKIA[0-9A-Z]{16}\b`,
}

deny_pii contains {"msg": sprintf("%s found in the %s", [kind, field]), "kind": kind, "field": field, "match": found} if {
	some field in params.fields
	text := input[field]
	is_string(text)
	some kind in params.kinds
	found := regex.find_n(patterns[kind], text, -1)
	count(found) > 0
}

deny_pii contains {"msg": sprintf("%s detected in the %s", [d.type, d.field]), "kind": d.type, "field": d.field, "match": d.text} if {
	some d in input.detections
	d.field in params.fields
}
