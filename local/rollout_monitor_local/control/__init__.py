"""``rollout-monitor`` against a stack: deploy and wait, status, watch, history, undo."""
