"""The `phasegate` command: one module per group of subcommands (`main` builds the app); every expected error becomes one line."""
