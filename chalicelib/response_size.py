"""What an answer weighs in Lambda's response, so answers that grow with the data stay below
Lambda's 6 MB limit (a bigger one fails as a 5xx the client cannot fix).

A proxy integration's response is one JSON document holding the body as a string. Chalice
writes a dict body as ASCII-escaped JSON and the runtime escapes that string once more, so
a quote weighs 2 bytes and a non-ASCII character up to 7. Measuring text as that document
holds it gives its worst weight, whatever the data is.
"""
from __future__ import annotations

import json
from typing import Any

LAMBDA_LIMIT_BYTES = 6 * 1024 * 1024


def text_bytes(text: str) -> int:
    """A text body's weight: the JSON string holding it, without its two quotes."""
    return len(json.dumps(text)) - 2


def json_bytes(value: Any) -> int:
    """A JSON body's (or one part's) weight: Chalice's JSON of it, held as a string."""
    return text_bytes(json.dumps(value, separators=(",", ":")))
