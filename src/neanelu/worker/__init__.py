"""The worker process: a composition root that wires pools, clients and every domain's tasks."""
