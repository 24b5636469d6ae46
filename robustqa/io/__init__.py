"""Document loaders and QA JSONL input/output."""
