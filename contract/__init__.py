"""Contract tooling: schemathesis settings and hooks, the CLI run, the node tools' pins."""
