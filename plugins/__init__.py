"""First-party gensr-bench plugins: metrics, models and suites, each registered by entry point."""
