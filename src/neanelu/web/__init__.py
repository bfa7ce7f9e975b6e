"""The HTTP service's composition root: app factory, lifespan, health."""
