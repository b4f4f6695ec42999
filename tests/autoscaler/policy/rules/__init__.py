"""The policy's table, one module per rule of autoscaler.policy.PRECEDENCE: each
module's ROWS are the scenarios in which that rule decides (tests/autoscaler/policy/
test_rules.py runs them all)."""
