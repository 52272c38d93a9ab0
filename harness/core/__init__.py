"""The ground floor: what every stage shares (records, the probe contract, exit codes and verdict words, errors, secrets, progress, JSON files)."""
