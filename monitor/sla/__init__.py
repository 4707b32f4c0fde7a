"""The one SLA core, pure and without I/O: counting (rollups, quantiles, budgets), the
window catalogue and calendar months, the minute classifier, per-objective selection and
the figures every view shows. Nothing outside this package classifies a minute or
computes compliance, budget or coverage."""
