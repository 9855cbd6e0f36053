"""Validates every XARF document of a JSON-lines file against the vendored
XARF v4 core schema (tests/xarf/xarf-core.json), formats included (uuid,
email, hostname, date-time). Usage: python xarf_check.py SCHEMA DOCS.jsonl;
prints the number of documents."""
import json
import sys

from jsonschema import Draft202012Validator

with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
failures = []
count = 0
with open(sys.argv[2], encoding="utf-8") as docs:
    for number, line in enumerate(docs, 1):
        count += 1
        for error in validator.iter_errors(json.loads(line)):
            failures.append(f"document {number}: {'/'.join(map(str, error.path))}: {error.message}")
if failures:
    print("\n".join(failures[:50]))
    sys.exit(1)
print(count)
