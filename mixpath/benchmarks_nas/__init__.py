"""NAS-Bench-201 and NAS-Bench-101: their spaces, model builders checked against the benchmark tables,
a reader for the official NAS-Bench-101 file, and benchmark tables as search evaluators."""
