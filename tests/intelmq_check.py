"""Loads every event of a JSON-lines file with IntelMQ's own Event class and
harmonization, strictly (no sanitising): any field IntelMQ rejects fails.
Usage: python intelmq_check.py EVENTS.jsonl; prints the number of events."""
import json
import sys

from intelmq.lib.message import Event

failures = []
count = 0
with open(sys.argv[1], encoding="utf-8") as events:
    for number, line in enumerate(events, 1):
        count += 1
        event = Event()
        for key, value in json.loads(line).items():
            try:
                event.add(key, value, sanitize=False)
            except Exception as error:  # IntelMQ raises several kinds
                failures.append(f"line {number}: {key}={value!r}: {error}")
if failures:
    print("\n".join(failures[:50]))
    sys.exit(1)
print(count)
