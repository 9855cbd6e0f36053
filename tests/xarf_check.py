"""Validates every XARF document of a JSON-lines file against the type
schema its category and type name (tests/xarf/types/, which includes the
core schema), formats included (uuid, email, hostname, date-time, uri).

Usage: python xarf_check.py SCHEMA_DIR DOCS.jsonl

Prints one JSON line per document: the required fields it lacks. Exits 1,
printing the errors, when a document breaks its schema in any other way
(a wrong value, a bad format, an unknown type)."""
import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

root = pathlib.Path(sys.argv[1])
resources = []
for path in [root / "xarf-core.json", *sorted((root / "types").glob("*.json"))]:
    schema = json.loads(path.read_text(encoding="utf-8"))
    resources.append((schema["$id"], Resource.from_contents(schema)))
registry = Registry().with_resources(resources)

failures = []
with open(sys.argv[2], encoding="utf-8") as docs:
    for number, line in enumerate(docs, 1):
        doc = json.loads(line)
        name = f"{doc.get('category')}-{str(doc.get('type')).replace('_', '-')}.json"
        path = root / "types" / name
        if not path.exists():
            failures.append(f"document {number}: no type schema {name}")
            continue
        schema = json.loads(path.read_text(encoding="utf-8"))
        validator = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        missing = []
        for error in validator.iter_errors(doc):
            if error.validator == "required":
                missing.extend(f for f in error.validator_value if f not in doc)
            elif error.validator == "anyOf" and error.context and all(
                e.validator == "required" and not e.path for e in error.context
            ):
                # "one of these fields" (copyright-p2p's swarm_info)
                for e in error.context:
                    missing.extend(f for f in e.validator_value if f not in doc)
            else:
                where = "/".join(map(str, error.path))
                failures.append(f"document {number} ({name}): {where}: {error.message}")
        print(json.dumps(sorted(set(missing))))
if failures:
    print("\n".join(failures[:50]))
    sys.exit(1)
