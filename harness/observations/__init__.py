"""From an executed notebook to what was observed: cells, install probes, tier payloads, pip output."""
