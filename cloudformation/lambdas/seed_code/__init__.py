"""Seed-code custom resource: creates or reuses the two GitLab projects and seeds them."""
