"""Command-line tools: print_schedule, viz, compile, fuzz, demo_artifacts."""
