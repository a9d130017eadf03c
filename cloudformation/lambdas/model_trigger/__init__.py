"""Model approval trigger: starts the model-deploy pipeline when a model version is approved or rejected."""
