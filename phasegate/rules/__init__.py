"""The practice as plain data and functions, with no I/O: who may answer a gate and when answers decide it, what the evidence shows, change requests, scope drift, budget, the business calendar."""
