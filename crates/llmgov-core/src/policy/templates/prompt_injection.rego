package llmgov

params := __PARAMS__

markers := array.concat([
	`(?i)ignore\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above)\s+(instructions|prompts|rules)`,
	`(?i)disregard\s+(all\s+|the\s+)?(previous|prior|above|system)\s+(instructions|prompt)`,
	`(?i)(reveal|print|show|repeat)\s+(me\s+)?(your|the)\s+(system\s+prompt|hidden\s+instructions)`,
	`(?i)you\s+are\s+now\s+(DAN|in\s+developer\s+mode|jailbroken)`,
	`(?i)pretend\s+(that\s+)?you\s+(have\s+no|are\s+free\s+of)\s+(rules|restrictions|guidelines)`,
	`(?i)</?(system|im_start|im_end)>`,
], params.extra_markers)

deny_injection contains {"msg": "prompt contains a prompt-injection marker", "match": found} if {
	text := input.prompt
	is_string(text)
	some marker in markers
	found := regex.find_n(marker, text, -1)
	count(found) > 0
}
