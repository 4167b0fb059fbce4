#!/usr/bin/env python3
"""Presidio's throughput on the same corpus, for `cargo bench -p llmgov-pii --bench scan`.

Usage: presidio.py CORPUS MAX_BYTES
Runs every predefined Presidio recognizer that needs no NLP model (its pattern recognizers
and the phone recognizer; spaCy models do not install offline) over the `text` of the first
records of CORPUS, up to MAX_BYTES of text, on one thread. Prints one line:
`presidio <MB/s> <bytes> <records> <entities>`.
"""
import json
import logging
import sys
import time

from presidio_analyzer import RecognizerRegistry

# The URL recognizer's suffix list cannot be fetched offline; it falls back to its snapshot
# and logs the failure at length.
logging.disable(logging.CRITICAL)

path, max_bytes = sys.argv[1], int(sys.argv[2])
texts, size = [], 0
with open(path, encoding="utf-8") as f:
    for line in f:
        t = json.loads(line).get("text", "")
        texts.append(t)
        size += len(t.encode("utf-8"))
        if size >= max_bytes:
            break

registry = RecognizerRegistry()
registry.load_predefined_recognizers()
recognizers = [r for r in registry.recognizers if "Spacy" not in type(r).__name__]

found = 0
start = time.perf_counter()
for t in texts:
    for r in recognizers:
        found += len(r.analyze(t, entities=r.supported_entities, nlp_artifacts=None) or [])
secs = time.perf_counter() - start
print(f"presidio {size / secs / 1e6:.4f} {size} {len(texts)} {found}")
