"""Contract tooling: schemathesis settings and hooks, the CLI run, the node tools' pins, and
the breaking-change gate of the released spec (`spec_diff`)."""
