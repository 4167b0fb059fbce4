package llmgov

params := __PARAMS__

# llmgov.pii(text) is the platform's PII engine: validated recognizers (e-mail addresses,
# cards that pass Luhn, SSNs in issued ranges, phone numbers, IBANs, crypto addresses,
# provider secrets, names, street addresses, ...). Each finding has `type`, `start`, `end`
# (code points), `score`, `recognizer` and the matched `text`.
deny_pii contains {"msg": sprintf("%s found in the %s", [e.type, field]), "kind": e.type, "field": field, "match": e.text} if {
	some field in params.fields
	text := input[field]
	is_string(text)
	some e in llmgov.pii(text)
	e.type in params.types
	e.score >= params.min_score
}

# Findings an upstream detector already made (input.detections).
deny_pii contains {"msg": sprintf("%s detected in the %s", [d.type, d.field]), "kind": d.type, "field": d.field, "match": d.text} if {
	some d in input.detections
	d.field in params.fields
}
