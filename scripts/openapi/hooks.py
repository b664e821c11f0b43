"""schemathesis hooks for scripts/openapi/run.sh (loaded through SCHEMATHESIS_HOOKS).

JSON Schema counts `1.0` as an integer; Rampart's bodies are read by serde, which takes a
JSON integer only where an integer is due (`1.0` for a quantity is 400 `validation_failed`,
a deliberate strictness). Generated bodies write integral numbers as integers, as every JSON
encoder of an integer does; nothing else in the generated data changes."""

import schemathesis


def _integers_as_integers(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers_as_integers(v) for v in value]
    return value


@schemathesis.hook
def map_body(context, body):
    return _integers_as_integers(body)
