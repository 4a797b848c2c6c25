"""What is done with a gate beyond recording it: starting phases and asking for reviews, deciding from the CLI, re-reading evidence, and the watch that reminds, escalates and times out."""
