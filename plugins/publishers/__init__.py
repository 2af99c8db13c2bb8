"""First-party leaderboard publishers (hook ``gensr_register_publishers``)."""
