"""Model Garden tasks of the GSA experiments (registered with `task_factory`)."""
