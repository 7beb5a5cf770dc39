"""Results an operator reads: events counted, attributed and rolled up per account and day
(`compute`, `rollups`), into a `model.Report`."""
